import { Rng } from '@app/mmoe';

import {
  meanStd,
  numberFlag,
  pairedDifferences,
  pairedVerdict,
  pearson,
  positiveIntFlag,
  quantile,
  standardError,
} from './bench.util';

describe('bench flags', () => {
  const argv = process.argv;
  const withArgs = (...args: string[]) => (process.argv = [...argv.slice(0, 2), ...args]);
  afterEach(() => (process.argv = argv));

  it('reads a number in its range, the fallback when absent, and names the flag and the range otherwise', () => {
    const replay = () => numberFlag('replay', 0.2, (n) => n >= 0 && n <= 1, 'in [0, 1]');
    withArgs('--days', '7');
    expect(replay()).toBe(0.2);
    withArgs('--replay', '0.5');
    expect(replay()).toBe(0.5);
    for (const bad of ['1.5', 'x', '', '--days']) {
      withArgs('--replay', bad);
      expect(replay).toThrow(`--replay must be a number in [0, 1] (got "${bad}")`);
    }
    withArgs('--rate', 'Infinity');
    expect(() => numberFlag('rate', 0.003, (n) => n > 0, 'above 0')).toThrow('--rate must be a number above 0');
  });

  it('reads a positive integer, and nothing else', () => {
    withArgs('--days', '14');
    expect(positiveIntFlag('days', 7)).toBe(14);
    expect(positiveIntFlag('seed', 1)).toBe(1);
    withArgs('--days', '1.5');
    expect(() => positiveIntFlag('days', 7)).toThrow('--days must be a positive integer (got "1.5")');
  });
});

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

  it('calls a paired difference only beyond t(n − 1) standard errors: ~5 % of null experiments, most real ones', () => {
    const rng = new Rng(11);
    const experiment = (shift: number) => Array.from({ length: 5 }, () => shift + 0.01 * rng.gaussian());
    const calls = (shift: number) => {
      const verdicts = Array.from({ length: 2000 }, () => pairedVerdict(experiment(shift), true));
      return {
        better: verdicts.filter((v) => v === 'better').length,
        worse: verdicts.filter((v) => v === 'worse').length,
      };
    };
    const none = calls(0); // nothing differs: 2.5 % each way at most, up to sampling noise
    expect(none.better + none.worse).toBeGreaterThan(40);
    expect(none.better + none.worse).toBeLessThan(160);
    expect(calls(0.03).better).toBeGreaterThan(1900); // 3 standard deviations of the per-seed noise
    expect(calls(-0.03).worse).toBeGreaterThan(1900);
    // Lower is better (an RMSE): a lower a is the better one.
    expect(pairedVerdict([-0.5, -0.52, -0.49, -0.51, -0.5], false)).toBe('better');
    expect(pairedVerdict([0.1], true)).toBe('no difference');
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
