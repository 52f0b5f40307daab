import { parseBoundedNumber, parseNumber } from './row-error';

describe('parseNumber', () => {
  it('reads decimal numbers, and a missing or blank value as NaN', () => {
    for (const [raw, value] of [
      ['1', 1],
      [' -2.5 ', -2.5],
      ['+.5', 0.5],
      ['3.', 3],
      ['1e3', 1000],
      ['-1E-2', -0.01],
      [7, 7],
    ] as const)
      expect(parseNumber(raw, 'x')).toBe(value);
    for (const missing of [undefined, null, '', ' ', '\t']) expect(parseNumber(missing, 'x')).toBeNaN();
  });

  it('refuses what Number() reads but no CSV means as a number', () => {
    for (const raw of ['0x10', '0b11', '0o7', 'Infinity', '-Infinity', 'NaN', '1e400', '1,5', '--1', '.', 'e3', true])
      expect(() => parseNumber(raw, 'x')).toThrow(`x: "${String(raw)}" is not a number`);
    expect(() => parseNumber(Number.NaN, 'x')).toThrow('x: NaN is not a number');
  });

  it('quotes a bad value escaped and cut short: no NUL or line break reaches a terminal, no 10 MB message', () => {
    expect(() => parseNumber('a\u0000b\nc', 'x')).toThrow('x: "a\\u0000b\\nc" is not a number');
    expect(() => parseNumber('y'.repeat(10_000), 'x')).toThrow(`x: "${'y'.repeat(100)}…" is not a number`);
  });

  it('bounds what a model trains on', () => {
    expect(parseBoundedNumber('-1e18', 'x')).toBe(-1e18);
    expect(() => parseBoundedNumber('1.5e18', 'x')).toThrow('x: 1500000000000000000 is beyond ±1e18');
  });
});
