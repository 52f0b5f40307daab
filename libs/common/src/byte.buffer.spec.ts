import { ByteBuffer } from './byte.buffer';

describe('ByteBuffer', () => {
  it('writes bytes, ASCII, encoded bytes and UTF-8 in order, and starts over on clear()', () => {
    const buffer = new ByteBuffer();
    buffer.reserve(32);
    buffer.byte(0x5b);
    buffer.ascii('12.5,');
    buffer.raw(Buffer.from('"k":'));
    buffer.utf8('日本é');
    buffer.byte(0x5d);
    expect(buffer.contents().toString()).toBe('[12.5,"k":日本é]');
    expect(buffer.copy().toString()).toBe('[12.5,"k":日本é]');
    buffer.clear();
    expect(buffer.contents()).toHaveLength(0);
    buffer.reserve(1);
    buffer.ascii('x');
    expect(buffer.copy().toString()).toBe('x');
  });

  it('keeps what was written when reserve() grows it, by doubling or to the size asked when that is more', () => {
    const buffer = new ByteBuffer();
    const line = (i: number) => `line ${i} ${'y'.repeat(i % 40)}\n`;
    let expected = '';
    for (let i = 0; i < 5_000; i++) {
      buffer.reserve(line(i).length);
      buffer.ascii(line(i));
      expected += line(i);
    }
    const huge = 'z'.repeat(1 << 20);
    buffer.reserve(huge.length);
    buffer.ascii(huge);
    expect(expected.length).toBeGreaterThan(64 * 1024);
    expect(buffer.contents().toString()).toBe(expected + huge);
  });

  it('fails, rather than answer bytes with a gap, when more was written than reserved', () => {
    const overrun = () => {
      const buffer = new ByteBuffer();
      buffer.reserve(64 * 1024);
      buffer.ascii('x'.repeat(64 * 1024 + 3)); // 3 bytes past the end, lost
      return buffer;
    };
    expect(() => overrun().copy()).toThrow('wrote 65539 bytes into 65536: room was not reserved for them');
    expect(() => overrun().contents()).toThrow(/room was not reserved/);
    // Growing would copy what fitted and leave the rest unwritten.
    expect(() => overrun().reserve(10)).toThrow(/room was not reserved/);
  });

  it('answers a copy that later writes do not change, and a view that they do', () => {
    const buffer = new ByteBuffer();
    buffer.reserve(3);
    buffer.ascii('abc');
    const copy = buffer.copy();
    const view = buffer.contents();
    buffer.clear();
    buffer.reserve(3);
    buffer.ascii('xyz');
    expect(copy.toString()).toBe('abc');
    expect(view.toString()).toBe('xyz');
  });
});
