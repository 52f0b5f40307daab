import { ByteBuffer, float32Text } from './byte.buffer';

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

  describe('float32()', () => {
    const written = (x: number) => {
      const buffer = new ByteBuffer();
      buffer.reserve(24);
      buffer.float32(x);
      return buffer.contents().toString();
    };
    /** The fewest significant digits that read back as x, by toPrecision (slow, obviously right). */
    const shortest = (x: number) => {
      for (let p = 1; p <= 9; p++) if (Math.fround(Number(x.toPrecision(p))) === x) return Number(x.toPrecision(p));
      return NaN;
    };
    const rng = (seed: number) => () =>
      (seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32;

    it('writes the shortest decimal that reads back as the same float32, laid out as JavaScript writes it', () => {
      const f = new Float32Array(1);
      const bits = new Uint32Array(f.buffer);
      const random = rng(7);
      let checked = 0;
      for (let i = 0; i < 60_000; i++) {
        // Scores in [0, 1), and any float32 at all (every exponent, both signs).
        f[0] = i % 2 ? random() : 0;
        if (i % 2 === 0) bits[0] = (random() * 2 ** 32) >>> 0;
        const x = f[0];
        const s = written(x);
        if (!Number.isFinite(x)) continue;
        expect(Math.fround(JSON.parse(s))).toBe(x);
        if (Math.abs(x) >= 1e-14 && Math.abs(x) < 1e14) {
          checked++;
          expect(Math.abs(JSON.parse(s))).toBe(shortest(Math.abs(x)));
          expect(String(Number(s))).toBe(s); // JavaScript's layout of that decimal
        }
      }
      expect(checked).toBeGreaterThan(40_000);
    });

    it('writes round numbers, powers of ten and the edges of the layouts as JavaScript does', () => {
      const cases: [number, string][] = [
        [0, '0'],
        [-0, '0'],
        [1, '1'],
        [-2.5, '-2.5'],
        [0.1, '0.1'],
        [0.99999994, '0.99999994'],
        [1e-6, '0.000001'],
        [9.999999e-7, '9.999999e-7'],
        [1e-7, '1e-7'],
        [1.5e-14, '1.5e-14'],
        [123456792, '123456790'],
        [16777216, '16777216'],
        [1e13, '10000000000000'],
      ];
      for (const [value, text] of cases) expect(written(Math.fround(value))).toBe(text);
    });

    it('writes what is no float32, or beyond the exponents it handles, as JavaScript does', () => {
      for (const x of [
        0.1,
        1 / 3,
        NaN,
        Infinity,
        -Infinity,
        Math.fround(3.4e38),
        Math.fround(1e-30),
        Math.fround(1e-45),
      ])
        expect(written(x)).toBe(String(x));
    });

    it('is what float32Text() answers as a string', () => {
      const random = rng(11);
      const values = [0, -2.5, 1e-7, 0.1, NaN, -Infinity, Math.fround(1e-30)];
      for (let i = 0; i < 1_000; i++) values.push(Math.fround(random()), Math.fround((random() - 0.5) * 1e6));
      for (const x of values) expect(float32Text(x)).toBe(written(x));
    });
  });
});
