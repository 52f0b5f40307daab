import { meanStd, pairedDifferences, pearson, quantile, standardError } from './bench.util';

describe('bench statistics', () => {
  it('gives the sample std over √n as the standard error', () => {
    const values = [1, 2, 3, 4, 10];
    expect(meanStd(values)).toEqual({ mean: 4, std: Math.sqrt(50 / 4) });
    expect(standardError(values)).toBeCloseTo(Math.sqrt(50 / 4) / Math.sqrt(5), 12);
    expect(standardError([7])).toBe(0);
  });

  it('pairs differences by index, so a shared per-seed offset cancels', () => {
    const offset = [0, 100, -50, 7];
    const a = offset.map((o) => o + 1);
    const b = offset.map((o, i) => o + 1 + 0.1 * (i - 1.5));
    const d = pairedDifferences(a, b);
    expect(d.map((v) => Number(v.toFixed(12)))).toEqual([0.15, 0.05, -0.05, -0.15]);
    expect(standardError(d)).toBeCloseTo(Math.sqrt(0.05 / 3) / 2, 12);
    expect(standardError(a)).toBeGreaterThan(30);
    expect(() => pairedDifferences([1, 2], [1])).toThrow(RangeError);
  });

  it('computes Pearson correlation', () => {
    const x = [1, 2, 3, 4, 5];
    expect(pearson(x, [2, 4, 6, 8, 10])).toBeCloseTo(1, 12);
    expect(pearson(x, [5, 4, 3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson(x, [1, -1, 0, -1, 1])).toBeCloseTo(0, 12);
    expect(() => pearson(x, [1])).toThrow(RangeError);
  });

  it('interpolates quantiles between closest ranks', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([4, 1, 3, 2], 0)).toBe(1);
    expect(quantile([4, 1, 3, 2], 1)).toBe(4);
  });
});
