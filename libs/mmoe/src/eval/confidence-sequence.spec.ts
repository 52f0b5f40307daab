import { Rng } from '../util/random';
import { mixtureBoundMultiple, mixtureBounds } from './confidence-sequence';
import { normalQuantile } from './delong';

describe('normal-mixture confidence sequence', () => {
  it('is wider than a fixed-sample bound and widens only slowly as data accumulate', () => {
    const fixed = normalQuantile(0.95);
    const multiples = [1e-2, 1e-4, 1e-6, 1e-8].map((v) => mixtureBoundMultiple(v, 0.05, 0.01));
    for (const m of multiples) expect(m).toBeGreaterThan(fixed);
    // Tightest near V = τ², then growing like √(log(1/V)).
    expect(multiples[1]).toBeLessThan(multiples[0]);
    expect(multiples[3]).toBeGreaterThan(multiples[2]);
    expect(multiples[3]).toBeLessThan(2.5 * fixed);
    expect(mixtureBoundMultiple(0, 0.05, 0.01)).toBeNaN();
  });

  it('solves the mixture martingale for its threshold 1/α', () => {
    const alpha = 0.05;
    const r = 3;
    const z = mixtureBoundMultiple(1 / r, alpha, 1);
    const phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
    const martingale = (2 / Math.sqrt(1 + r)) * Math.exp((z * z * r) / (2 * (1 + r))) * phi(z * Math.sqrt(r / (1 + r)));
    expect(martingale).toBeCloseTo(1 / alpha, 5);
    const { lower, upper } = mixtureBounds(0.1, 1 / r, alpha, 1);
    expect(lower).toBeCloseTo(0.1 - z / Math.sqrt(r), 12);
    expect(upper).toBeCloseTo(0.1 + z / Math.sqrt(r), 12);
  });

  it('keeps its error rate however often one looks, where a repeated fixed test does not', () => {
    // Gaussian random walks with no drift, looked at after every step: the estimate is the running mean.
    const rng = new Rng(5);
    const paths = 600;
    const looks = 200;
    let sequential = 0;
    let fixed = 0;
    for (let p = 0; p < paths; p++) {
      let sum = 0;
      let crossedSequential = false;
      let crossedFixed = false;
      for (let n = 1; n <= looks; n++) {
        sum += rng.gaussian();
        const variance = 1 / n;
        const { lower } = mixtureBounds(sum / n, variance, 0.05, 0.1);
        if (lower > 0) crossedSequential = true;
        if (sum / n > normalQuantile(0.95) * Math.sqrt(variance)) crossedFixed = true;
      }
      if (crossedSequential) sequential++;
      if (crossedFixed) fixed++;
    }
    expect(sequential / paths).toBeLessThan(0.05);
    expect(fixed / paths).toBeGreaterThan(0.2);
  });
});

/** Abramowitz & Stegun 7.1.26, written out independently of the implementation's normalCdf. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y =
    1 -
    t *
      (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) *
      Math.exp(-x * x);
  return x >= 0 ? y : -y;
}
