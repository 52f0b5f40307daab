import { Rng } from '../util/random';
import { delongAuc, delongPaired, delongUnpaired, normalCdf, normalQuantile } from './delong';
import { auc } from './metrics';

/** Scores whose positives sit `separation` standard deviations above the negatives. */
function sample(rng: Rng, n: number, separation: number): { scores: Float64Array; labels: Float64Array } {
  const labels = Float64Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0));
  const scores = labels.map((y) => y * separation + rng.gaussian());
  return { scores, labels };
}

/** The components by their O(m·n) definition. */
function bruteForceVariance(scores: number[], labels: number[]): number {
  const pos = scores.filter((_, i) => labels[i] === 1);
  const neg = scores.filter((_, i) => labels[i] === 0);
  const psi = (x: number, y: number) => (x > y ? 1 : x === y ? 0.5 : 0);
  const v10 = pos.map((x) => neg.reduce((s, y) => s + psi(x, y), 0) / neg.length);
  const v01 = neg.map((y) => pos.reduce((s, x) => s + psi(x, y), 0) / pos.length);
  const variance = (v: number[]) => {
    const m = v.reduce((s, x) => s + x, 0) / v.length;
    return v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1);
  };
  return variance(v10) / pos.length + variance(v01) / neg.length;
}

describe('DeLong', () => {
  it('estimates the exact AUC and the variance of its structural components, ties counted ½', () => {
    const scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.8];
    const labels = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0];
    const estimate = delongAuc(scores, labels);
    expect(estimate.auc).toBeCloseTo(auc(scores, labels), 12);
    expect(estimate.variance).toBeCloseTo(bruteForceVariance(scores, labels), 12);
    expect(estimate).toMatchObject({ positives: 4, negatives: 6 });
  });

  it('has no estimate with one class only', () => {
    expect(delongAuc([0.1, 0.2], [1, 1]).auc).toBeNaN();
  });

  it('pairs two scorers of the same examples: the same scorer differs by exactly 0', () => {
    const { scores, labels } = sample(new Rng(1), 500, 1);
    const same = delongPaired(scores, scores, labels);
    expect(same.difference).toBe(0);
    expect(same.standardError).toBe(0);
    const noisy = scores.map((s, i) => s + (i % 7) * 0.3);
    const paired = delongPaired(scores, noisy, labels);
    const unpaired = delongUnpaired({ scores, labels }, { scores: noisy, labels });
    // Correlated scorers: pairing removes the shared variance.
    expect(paired.standardError).toBeLessThan(unpaired.standardError);
    expect(paired.difference).toBeCloseTo(unpaired.difference, 12);
  });

  it('rejects a true null at about its nominal rate, and detects a real difference', () => {
    const rng = new Rng(7);
    const z = normalQuantile(0.95);
    let falseAlarms = 0;
    let detections = 0;
    const runs = 300;
    for (let r = 0; r < runs; r++) {
      const a = sample(rng, 400, 1);
      const same = delongUnpaired(a, sample(rng, 400, 1));
      if (same.difference / same.standardError < -z) falseAlarms++;
      const worse = delongUnpaired(a, sample(rng, 400, 0.3));
      if (worse.difference / worse.standardError < -z) detections++;
    }
    expect(falseAlarms / runs).toBeGreaterThan(0.01);
    expect(falseAlarms / runs).toBeLessThan(0.1);
    expect(detections / runs).toBeGreaterThan(0.95);
  });

  it('normal CDF and quantile', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-3)).toBeCloseTo(0.0013499, 6);
    expect(normalQuantile(0.95)).toBeCloseTo(1.6448536, 6);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.0902323, 6);
    expect(normalCdf(normalQuantile(0.8))).toBeCloseTo(0.8, 6);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });
});
