import { Rng } from '../util/random';
import {
  auc,
  binaryMetrics,
  expectedCalibrationError,
  gauc,
  logLoss,
  mae,
  meanLabel,
  meanPrediction,
  regressionMetrics,
  reliabilityCurve,
  rmse,
} from './metrics';

/** The definition: share of (positive, negative) pairs ranked correctly, ties counting ½. */
function pairwiseAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i] > scores[j]) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}

describe('auc', () => {
  it('is 1 for a perfect ranking and 0 for a reversed one', () => {
    expect(auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
  });

  it('is 0.5 when all scores are tied', () => {
    expect(auc([0.3, 0.3, 0.3, 0.3, 0.3], [1, 0, 0, 1, 0])).toBe(0.5);
  });

  it('gives tied scores their average rank', () => {
    // Ranks 1, 2.5, 2.5, 4; positives hold 2.5 + 4 = 6.5; U = 6.5 − 2·3/2 = 3.5; AUC = 3.5 / (2·2) = 0.875.
    expect(auc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1])).toBe(0.875);
    // Ranks 2, 2, 2, 4.5, 4.5; positives hold 2 + 4.5 = 6.5; U = 6.5 − 3 = 3.5; AUC = 3.5 / (2·3) = 7/12.
    expect(auc([0.2, 0.2, 0.2, 0.5, 0.5], [1, 0, 0, 1, 0])).toBeCloseTo(7 / 12, 15);
  });

  it('agrees with the pairwise definition on random data with many ties', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 5; trial++) {
      const n = 500;
      const scores = new Float32Array(n);
      const labels = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        labels[i] = rng.next() < 0.3 ? 1 : 0;
        // 20 score levels over 500 rows: ties everywhere, mildly informative.
        scores[i] = Math.min(19, rng.int(20) + labels[i] * rng.int(4)) / 20;
      }
      expect(auc(scores, labels)).toBeCloseTo(pairwiseAuc(scores, labels), 12);
    }
  });

  it('handles 1M rows exactly and fast', () => {
    const rng = new Rng(11);
    const n = 1_000_000;
    const levels = 1000;
    const scores = new Float32Array(n);
    const labels = new Uint8Array(n);
    const posAt = new Float64Array(levels);
    const negAt = new Float64Array(levels);
    for (let i = 0; i < n; i++) {
      const y = rng.next() < 0.1 ? 1 : 0;
      const level = Math.min(levels - 1, rng.int(levels) + y * 100);
      labels[i] = y;
      scores[i] = level / levels;
      if (y === 1) posAt[level]++;
      else negAt[level]++;
    }
    // Independent exact answer from per-level counts: U = Σ_level pos · (negatives below + ½ negatives at level).
    let u = 0;
    let negBelow = 0;
    let nPos = 0;
    for (let l = 0; l < levels; l++) {
      u += posAt[l] * (negBelow + negAt[l] / 2);
      negBelow += negAt[l];
      nPos += posAt[l];
    }
    const expected = u / (nPos * negBelow);

    const start = performance.now();
    const got = auc(scores, labels);
    const ms = performance.now() - start;
    expect(got).toBeCloseTo(expected, 12);
    expect(ms).toBeLessThan(5000); // generous for slow CI; takes a few hundred ms
  });

  it('leaves masked rows out', () => {
    const scores = [0.1, 0.9, 0.4, 0.8, 0.2];
    const labels = [0, 0, 1, 1, 0];
    const mask = Uint8Array.from([1, 0, 1, 1, 1]); // drop the high-scored negative
    expect(auc(scores, labels)).toBeCloseTo(4 / 6, 15);
    expect(auc(scores, labels, mask)).toBe(1);
    expect(auc(scores, labels, mask)).toBe(auc([0.1, 0.4, 0.8, 0.2], [0, 1, 1, 0]));
  });

  it('is NaN when only one class is present', () => {
    expect(auc([0.1, 0.5, 0.9], [1, 1, 1])).toBeNaN();
    expect(auc([0.1, 0.5, 0.9], [0, 0, 0])).toBeNaN();
    expect(auc([0.1, 0.5, 0.9], [0, 1, 1], Uint8Array.from([0, 1, 1]))).toBeNaN();
    expect(auc([], [])).toBeNaN();
  });

  it('is NaN when an included score is NaN', () => {
    expect(auc([0.1, NaN, 0.9], [0, 1, 1])).toBeNaN();
    expect(auc([0.1, NaN, 0.9], [0, 1, 1], Uint8Array.from([1, 0, 1]))).toBe(1);
  });

  it('rejects misaligned inputs', () => {
    expect(() => auc([0.1, 0.2], [0, 1, 1])).toThrow(RangeError);
    expect(() => auc([0.1, 0.2], [0, 1], Uint8Array.from([1]))).toThrow(RangeError);
  });
});

describe('logLoss', () => {
  it('is ln 2 at p = 0.5 whatever the label', () => {
    expect(logLoss([0.5, 0.5], [0, 1])).toBeCloseTo(Math.LN2, 12);
  });

  it('matches −[y ln p + (1−y) ln(1−p)] averaged', () => {
    const expected = -(Math.log(0.9) + Math.log(1 - 0.2)) / 2;
    expect(logLoss([0.9, 0.2], [1, 0])).toBeCloseTo(expected, 12);
  });

  it('clips p = 0 and p = 1 so the loss stays finite', () => {
    const wrong = logLoss([0, 1], [1, 0]);
    expect(Number.isFinite(wrong)).toBe(true);
    expect(wrong).toBeCloseTo(-Math.log(1e-7), 6);
    expect(logLoss([0, 1], [0, 1])).toBeCloseTo(-Math.log(1 - 1e-7), 12);
  });

  it('leaves masked rows out and is NaN when nothing is left', () => {
    expect(logLoss([0.5, 0], [1, 1], Uint8Array.from([1, 0]))).toBeCloseTo(Math.LN2, 12);
    expect(logLoss([0.5], [1], Uint8Array.from([0]))).toBeNaN();
  });
});

describe('rmse and mae', () => {
  it('match known values', () => {
    // Errors 0, 1, −2: squared mean 5/3, absolute mean 1.
    expect(rmse([1, 2, -1], [1, 1, 1])).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(mae([1, 2, -1], [1, 1, 1])).toBeCloseTo(1, 12);
  });

  it('leave masked rows out', () => {
    const mask = Uint8Array.from([1, 1, 0]);
    expect(rmse(Float32Array.from([1, 3, 100]), [1, 1, 1], mask)).toBeCloseTo(Math.sqrt(2), 6);
    expect(mae(Float32Array.from([1, 3, 100]), [1, 1, 1], mask)).toBeCloseTo(1, 6);
  });
});

describe('means', () => {
  it('average predictions and labels over the unmasked rows', () => {
    const mask = Uint8Array.from([1, 0, 1, 1]);
    expect(meanPrediction([0.2, 0.9, 0.4, 0.6], mask)).toBeCloseTo(0.4, 12);
    expect(meanLabel([1, 1, 0, 0], mask)).toBeCloseTo(1 / 3, 12);
    expect(meanLabel([1, 1], Uint8Array.from([0, 0]))).toBeNaN();
  });
});

describe('gauc', () => {
  it('weighs each group by its rows, on a hand-computed case with ties', () => {
    // Group 0 (4 rows): pairs (0.8>0.1) (0.8>0.4) (0.4=0.4 → ½) (0.4>0.1) → 3.5 / 4 = 0.875.
    // Group 1 (3 rows): positive 0.2 vs negatives 0.5, 0.2 → 0 + ½ → 0.25.
    // GAUC = (4 · 0.875 + 3 · 0.25) / 7 = 4.25 / 7.
    const scores = [0.1, 0.4, 0.4, 0.8, 0.5, 0.2, 0.2];
    const labels = [0, 0, 1, 1, 0, 1, 0];
    const groups = [0, 0, 0, 0, 1, 1, 1];
    expect(gauc(scores, labels, groups)).toEqual({ gauc: expect.closeTo(4.25 / 7, 15), groups: 2, skippedGroups: 0 });
  });

  it('skips and counts the groups with one class, and leaves masked and ungrouped rows out', () => {
    // Group 2 has only positives, group 3 only negatives, group 5 has one negative only after the mask.
    // Row 6 has no group (-1). Left: group 0 = (0.9 > 0.3, 0.9 > 0.1) = 1 with 3 rows.
    const scores = [0.9, 0.3, 0.1, 0.5, 0.6, 0.7, 0.01, 0.2, 0.8];
    const labels = [1, 0, 0, 1, 1, 0, 1, 0, 1];
    const groups = [0, 0, 0, 2, 2, 3, -1, 5, 5];
    const mask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(gauc(scores, labels, groups, mask)).toEqual({ gauc: 1, groups: 1, skippedGroups: 3 });
  });

  it('is the plain AUC with a single group, and the mean of the AUCs for equal-sized groups', () => {
    const rng = new Rng(3);
    const n = 400;
    const scores = Float32Array.from({ length: n }, () => rng.int(10) / 10);
    const labels = Float32Array.from({ length: n }, () => (rng.next() < 0.4 ? 1 : 0));
    expect(gauc(scores, labels, new Int32Array(n)).gauc).toBeCloseTo(auc(scores, labels), 12);
    const halves = Int32Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : 1));
    const first = auc(scores.subarray(0, n / 2), labels.subarray(0, n / 2));
    const second = auc(scores.subarray(n / 2), labels.subarray(n / 2));
    expect(gauc(scores, labels, halves).gauc).toBeCloseTo((first + second) / 2, 12);
  });

  it('is NaN when no group holds both classes, and refuses misaligned or fractional ids', () => {
    expect(gauc([0.1, 0.2], [1, 0], [0, 1])).toEqual({ gauc: NaN, groups: 0, skippedGroups: 2 });
    expect(() => gauc([0.1, 0.2], [1, 0], [0])).toThrow(RangeError);
    expect(() => gauc([0.1, 0.2], [1, 0], [0, 0.5])).toThrow(/not an integer/);
  });
});

describe('reliability curve and ECE', () => {
  it('cut the rows sorted by prediction into equal-mass bins', () => {
    // 6 rows, 3 bins of 2: (0.1, 0.2 | 0, 0), (0.3, 0.5 | 1, 0), (0.7, 0.9 | 1, 1).
    const probs = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2];
    const labels = [1, 0, 0, 1, 1, 0];
    const curve = reliabilityCurve(probs, labels, undefined, 3);
    expect(curve.map((b) => b.count)).toEqual([2, 2, 2]);
    expect(curve[0].meanPrediction).toBeCloseTo(0.15, 12);
    expect(curve[1]).toEqual({ meanPrediction: expect.closeTo(0.4, 12), labelRate: 0.5, count: 2 });
    expect(curve[2].labelRate).toBe(1);
    // ECE = (2·0.15 + 2·0.1 + 2·0.2) / 6 = 0.15.
    expect(expectedCalibrationError(probs, labels, undefined, 3)).toBeCloseTo(0.15, 12);
  });

  it('is near 0 for calibrated probabilities and large for over-confident ones (15 bins by default)', () => {
    const rng = new Rng(5);
    const n = 30_000;
    const probs = Float64Array.from({ length: n }, () => rng.next());
    const labels = Float64Array.from(probs, (p) => (rng.next() < p ? 1 : 0));
    expect(reliabilityCurve(probs, labels)).toHaveLength(15);
    expect(expectedCalibrationError(probs, labels)).toBeLessThan(0.02);
    const doubled = Float64Array.from(probs, (p) => Math.min(1, 2 * p));
    expect(expectedCalibrationError(doubled, labels)).toBeGreaterThan(0.2);
  });
});

describe('binaryMetrics and regressionMetrics', () => {
  it('bundle the metrics over the same rows', () => {
    const probs = [0.1, 0.4, 0.4, 0.8, 0.99];
    const labels = [0, 0, 1, 1, 0];
    const mask = Uint8Array.from([1, 1, 1, 1, 0]);
    const m = binaryMetrics(probs, labels, mask);
    expect(m.auc).toBe(0.875);
    expect(m.logloss).toBeCloseTo(logLoss(probs.slice(0, 4), labels.slice(0, 4)), 12);
    expect(m.meanPrediction).toBeCloseTo(0.425, 12);
    expect(m.labelRate).toBe(0.5);
    expect(m.count).toBe(4);
    expect(binaryMetrics(probs, labels).count).toBe(5);
    expect(m.ece).toBeCloseTo(expectedCalibrationError(probs.slice(0, 4), labels.slice(0, 4)), 12);
    expect(m.gauc).toBeUndefined();
    expect(binaryMetrics(probs, labels, mask, [0, 0, 0, 0, 0])).toMatchObject({ gauc: 0.875, gaucGroups: 1 });
  });

  it('regressionMetrics', () => {
    const m = regressionMetrics([1, 2, -1, 50], [1, 1, 1, 0], Uint8Array.from([1, 1, 1, 0]));
    expect(m.rmse).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(m.mae).toBeCloseTo(1, 12);
    expect(m.meanPrediction).toBeCloseTo(2 / 3, 12);
    expect(m.meanLabel).toBe(1);
    expect(m.count).toBe(3);
  });
});

describe('sample weights', () => {
  /** Each row repeated `copies[i]` times: what an integer weight means. */
  const repeat = (values: ArrayLike<number>, copies: number[]) =>
    Array.from(values).flatMap((v, i) => Array<number>(copies[i]).fill(v));

  it('count each row as often as its integer weight, in AUC, log loss, RMSE and MAE', () => {
    const rng = new Rng(3);
    const n = 300;
    const scores = Float32Array.from({ length: n }, () => rng.int(15) / 15); // ties everywhere
    const labels = Float32Array.from(scores, (s) => (rng.next() < s ? 1 : 0));
    const copies = Array.from({ length: n }, () => rng.int(4)); // 0 leaves a row out
    const mask = Uint8Array.from({ length: n }, () => (rng.next() < 0.9 ? 1 : 0));
    const kept = (values: ArrayLike<number>) =>
      repeat(
        values,
        copies.map((c, i) => (mask[i] ? c : 0)),
      );
    const [s, y] = [kept(scores), kept(labels)];
    expect(auc(scores, labels, mask, copies)).toBeCloseTo(pairwiseAuc(s, y), 12);
    expect(logLoss(scores, labels, mask, copies)).toBeCloseTo(logLoss(s, y), 12);
    expect(rmse(scores, labels, mask, copies)).toBeCloseTo(rmse(s, y), 12);
    expect(mae(scores, labels, mask, copies)).toBeCloseTo(mae(s, y), 12);
  });

  it('are the unweighted metrics with weights all equal, and NaN when the rows weigh nothing', () => {
    const scores = [0.1, 0.7, 0.4, 0.4, 0.9];
    const labels = [0, 1, 0, 1, 1];
    const half = scores.map(() => 0.5);
    expect(auc(scores, labels, undefined, half)).toBeCloseTo(auc(scores, labels), 15);
    expect(logLoss(scores, labels, undefined, half)).toBeCloseTo(logLoss(scores, labels), 15);
    const metrics = binaryMetrics(scores, labels, undefined, undefined, [0, 0, 0, 0, 0]);
    expect([metrics.auc, metrics.logloss, metrics.count]).toEqual([NaN, NaN, 5]);
    expect(regressionMetrics(scores, labels, undefined, [1, 0, 0, 0, 0]).rmse).toBeCloseTo(0.1, 12);
    expect(() => auc(scores, labels, undefined, [1])).toThrow('1 weights for 5 scores');
  });
});
