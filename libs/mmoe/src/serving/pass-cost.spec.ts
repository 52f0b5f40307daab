import { Rng } from '../util/random';
import { PassCost } from './pass-cost';

/** Passes of `rows` rows drawn by `draw`, fed to a fresh PassCost after a first pass of `first` ms. */
function learnt(rows: number, first: number, passes: number, draw: () => number): PassCost {
  const cost = new PassCost(rows, first);
  for (let i = 0; i < passes; i++) cost.observe(rows, draw());
  return cost;
}

describe('PassCost', () => {
  it('prices a pass by its rows, from the mean cost per row', () => {
    const cost = learnt(500, 3, 50, () => 3);
    expect(cost.expectedMs(500)).toBeCloseTo(3, 6);
    expect(cost.expectedMs(1000)).toBeCloseTo(6, 6);
  });

  it('bounds steady passes close to their mean: no spread, no margin', () => {
    const cost = learnt(500, 3, 100, () => 3);
    expect(cost.boundMs(500)).toBeCloseTo(3, 2);
  });

  it('bounds all but ~3 % of passes when they spread, where their mean is exceeded by a third of them', () => {
    const rng = new Rng(3);
    // Passes of about 3 ms with a long right tail (log-normal, σ = 0.6), as when they contend for the cores.
    const draw = () => 3 * Math.exp(0.6 * rng.gaussian());
    const cost = learnt(500, 3, 200, draw);
    let overBound = 0;
    let overMean = 0;
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const ms = draw();
      if (ms > cost.boundMs(500)) overBound++;
      if (ms > cost.expectedMs(500)) overMean++;
      cost.observe(500, ms);
    }
    expect(overMean / n).toBeGreaterThan(0.3);
    expect(overBound / n).toBeLessThan(0.05);
  });

  it('follows a change of regime: the bound widens when passes turn slow, and narrows back when they steady', () => {
    const cost = learnt(500, 3, 100, () => 3);
    const quiet = cost.boundMs(500);
    for (let i = 0; i < 20; i++) cost.observe(500, i % 2 === 0 ? 3 : 20);
    expect(cost.boundMs(500)).toBeGreaterThan(5 * quiet);
    for (let i = 0; i < 100; i++) cost.observe(500, 3);
    expect(cost.boundMs(500)).toBeLessThan(1.1 * quiet);
  });
});
