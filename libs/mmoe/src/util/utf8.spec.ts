import { invalidUtf8At } from './utf8';

describe('invalidUtf8At', () => {
  it('finds where the first sequence that is not UTF-8 starts', () => {
    const at = (...parts: (string | number[])[]) =>
      invalidUtf8At(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Uint8Array.from(p)))));
    expect(at('{"id":"é😀"}')).toBe(-1);
    expect(at('{"id":"a', [0xff], '"}')).toBe(8); // never a lead byte
    expect(at('{"id":"a', [0xf0, 0x9f, 0x98], '"}')).toBe(8); // a 4-byte character cut to 3
    expect(at('ab', [0xc0, 0xaf])).toBe(2); // overlong '/'
    expect(at('ab', [0xed, 0xa0, 0x80])).toBe(2); // a surrogate, encoded
    expect(at('é', [0x80])).toBe(2); // a continuation byte alone
    expect(at('ab', [0xe2, 0x82])).toBe(2); // cut at the end
  });
});
