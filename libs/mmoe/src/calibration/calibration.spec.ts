import { expectedCalibrationError, logLoss } from '../eval/metrics';
import { Rng } from '../util/random';
import { applyCalibrator, checkCalibration, fitCalibration, fitIsotonic, fitPlatt } from './calibration';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const logit = (p: number) => Math.log(p / (1 - p));
const all = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

/**
 * Labels drawn from true probabilities, and scores distorted from them in a known way: an over-confident model
 * (logit doubled, shifted up by 0.5), as a network trained too long or on re-weighted data would be.
 */
function miscalibrated(n: number, seed: number, distort = (p: number) => sigmoid(2 * logit(p) + 0.5)) {
  const rng = new Rng(seed);
  const truth = Float64Array.from({ length: n }, () => sigmoid(rng.gaussian() - 1.5));
  const labels = Float64Array.from(truth, (p) => (rng.next() < p ? 1 : 0));
  const scores = Float64Array.from(truth, distort);
  return { truth, labels, scores };
}

describe('calibration', () => {
  it('Platt scaling recovers the inverse of a known logit distortion, and ECE falls', () => {
    const fit = miscalibrated(20_000, 1);
    const c = fitPlatt(fit.scores, fit.labels, all(20_000));
    // score logit = 2·z + 0.5, so z = 0.5·score logit − 0.25.
    expect(c).toEqual({ type: 'platt', a: expect.closeTo(0.5, 1), b: expect.closeTo(-0.25, 1) });

    const test = miscalibrated(20_000, 2);
    const calibrated = test.scores.map((p) => applyCalibrator(c, p));
    const before = expectedCalibrationError(test.scores, test.labels);
    const after = expectedCalibrationError(calibrated, test.labels);
    expect(before).toBeGreaterThan(0.05);
    expect(after).toBeLessThan(0.015);
    expect(logLoss(calibrated, test.labels)).toBeLessThan(logLoss(test.scores, test.labels));
  });

  it('isotonic regression pools adjacent violators into a monotone curve, interpolated between block ends', () => {
    const c = fitIsotonic([0.1, 0.3, 0.2, 0.4, 0.4], [0, 0, 1, 1, 0], all(5));
    // Sorted: 0.1:0 | 0.2:1 | 0.3:0 → pooled with 0.2 at ½ | 0.4: (1 + 0) / 2 = ½ → pooled again: [0.2, 0.4] at ½.
    expect(c).toEqual({ type: 'isotonic', x: [0.1, 0.2, 0.4], y: [0, 0.5, 0.5] });
    expect(applyCalibrator(c, 0.05)).toBe(0);
    expect(applyCalibrator(c, 0.15)).toBeCloseTo(0.25, 12);
    expect(applyCalibrator(c, 0.3)).toBe(0.5);
    expect(applyCalibrator(c, 0.9)).toBe(0.5);
  });

  it('isotonic regression fixes a distortion Platt scaling cannot, and ECE falls', () => {
    // Probabilities squashed into a band around 0.5: not a logit-linear map, a step-like one.
    const distort = (p: number) => 0.45 + 0.1 * Math.sqrt(p);
    const fit = miscalibrated(20_000, 3, distort);
    const test = miscalibrated(20_000, 4, distort);
    const c = fitIsotonic(fit.scores, fit.labels, all(20_000));
    expect(c.type === 'isotonic' && c.y.every((v, i) => i === 0 || v >= c.y[i - 1])).toBe(true);
    const calibrated = test.scores.map((p) => applyCalibrator(c, p));
    expect(expectedCalibrationError(test.scores, test.labels)).toBeGreaterThan(0.2);
    expect(expectedCalibrationError(calibrated, test.labels)).toBeLessThan(0.02);
  });

  it('auto picks the method with the lowest cross-validated log loss, and none when the scores are calibrated', () => {
    const skewed = miscalibrated(10_000, 5);
    const chosen = fitCalibration('auto', skewed.scores, skewed.labels);
    const losses = chosen.crossValidatedLogloss!;
    expect(chosen.method).toBe(
      (Object.keys(losses) as (keyof typeof losses)[]).sort((a, b) => losses[a] - losses[b])[0],
    );
    expect(chosen.method).not.toBe('none');
    expect(chosen.calibrator?.type).toBe(chosen.method);

    const honest = miscalibrated(10_000, 6, (p) => p);
    const kept = fitCalibration('auto', honest.scores, honest.labels);
    expect(kept.crossValidatedLogloss!.none).toBeLessThan(kept.crossValidatedLogloss!.isotonic);
    expect(fitCalibration('none', honest.scores, honest.labels)).toEqual({ calibrator: null, method: 'none' });
  });

  it('leaves masked rows out of the fit', () => {
    const mask = Uint8Array.from([1, 1, 0, 1]);
    const c = fitCalibration('isotonic', [0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1], mask).calibrator;
    expect(c).toEqual({ type: 'isotonic', x: [0.1, 0.2, 0.4], y: [0, 1, 1] });
  });

  it('checks what an artifact stores against the tasks', () => {
    const tasks = [
      { name: 'click', type: 'binary' as const },
      { name: 'watch', type: 'regression' as const },
    ];
    const platt = { type: 'platt', a: 0.5, b: 0.1 };
    expect(checkCalibration([platt, null], tasks)).toEqual([platt, null]);
    expect(() => checkCalibration([platt], tasks)).toThrow(/one entry per task/);
    expect(() => checkCalibration([null, platt], tasks)).toThrow(/"watch": only binary tasks/);
    expect(() => checkCalibration([{ type: 'isotonic', x: [0.2, 0.1], y: [0, 1] }, null], tasks)).toThrow(
      /"click" is neither/,
    );
    // Finite, but its float32 product with a logit is not.
    expect(() => checkCalibration([{ type: 'platt', a: 1e308, b: 1e308 }, null], tasks)).toThrow(/"click" is neither/);
    expect(checkCalibration([{ type: 'platt', a: -1e6, b: 1e6 }, null], tasks)).toHaveLength(2);
  });
});
