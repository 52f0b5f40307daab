import { TrainingEta } from './training-eta';

const at = (epoch: number, step: number) => ({ epoch, epochs: 2, step, steps: 10, loss: 0.5, examplesPerSec: 100 });

describe('TrainingEta', () => {
  it('knows nothing before a step has been timed', () => {
    const eta = new TrainingEta();
    expect(eta.secondsLeft(at(1, 3), 1000)).toBeUndefined();
    expect(eta.secondsLeft(at(1, 3), 5000)).toBeUndefined();
  });

  it('extrapolates the pace since the first update over the steps left, across epochs', () => {
    const eta = new TrainingEta();
    eta.secondsLeft(at(1, 2), 10_000);
    // 4 steps in 2 s: 0.5 s a step, 14 steps left.
    expect(eta.secondsLeft(at(1, 6), 12_000)).toBeCloseTo(7);
    // Validation between epochs slows the measured pace: 10 steps in 10 s, 8 left.
    expect(eta.secondsLeft(at(2, 2), 20_000)).toBeCloseTo(8);
  });
});
