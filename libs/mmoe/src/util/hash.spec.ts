import { fnv1a32, sha256Hex } from './hash';
import { Rng } from './random';

/** The textbook FNV-1a over bytes, to check the string walk against. */
function fnv1aOfBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

describe('fnv1a32', () => {
  it('gives the published FNV-1a 32 values', () => {
    expect(fnv1a32('', 'utf8')).toBe(0x811c9dc5);
    expect(fnv1a32('a', 'utf8')).toBe(0xe40c292c);
    expect(fnv1a32('foobar', 'utf8')).toBe(0xbf9cf968);
    expect(fnv1a32('foobar', 'utf16')).toBe(0xbf9cf968);
  });

  it('hashes exactly the bytes Buffer.from(value, "utf8") holds, surrogate pairs and lone surrogates included', () => {
    const rng = new Rng(7);
    const units = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xe9, 0x65e5, 0xd83d, 0xde00, 0xdbff, 0xdc00, 0xfffd, 0xffff];
    for (let n = 0; n < 2000; n++) {
      const value = String.fromCharCode(...Array.from({ length: rng.int(8) }, () => units[rng.int(units.length)]));
      expect(fnv1a32(value, 'utf8')).toBe(fnv1aOfBytes(Buffer.from(value, 'utf8')));
    }
  });

  it('hashes UTF-16 code units apart from UTF-8 bytes beyond ASCII', () => {
    expect(fnv1a32('é', 'utf16')).toBe(fnv1aOfBytes(Uint8Array.of(0xe9)));
    expect(fnv1a32('é', 'utf8')).toBe(fnv1aOfBytes(Uint8Array.of(0xc3, 0xa9)));
  });
});

describe('sha256Hex', () => {
  it('hashes bytes, and strings as UTF-8', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
  });
});
