import type { ScoreResult } from '../serving/scorer';
import { outputStage } from './calibrated.scorer';
import type { Calibration, Calibrator } from './calibration';

/** Raises every probability to at least 0.5: calibrating a later step alone can lift it above the one before. */
const lift: Calibrator = { type: 'isotonic', x: [0, 1], y: [0.5, 1] };
const result = (...scores: number[][]): ScoreResult => ({ scores: scores.map((s) => Float32Array.from(s)) });

describe('outputStage', () => {
  // A three-step funnel listed out of order (purchase before the cart it follows), beside an unrelated task.
  const tasks = [
    { name: 'purchase', dependsOn: 'cart' },
    { name: 'click' },
    { name: 'cart', conditionalOn: 'click' },
    { name: 'like' },
  ];

  it('holds each calibrated funnel step at or below the one before it, along a whole chain', () => {
    const calibration: Calibration = [lift, null, lift, lift];
    const stage = outputStage(calibration, tasks)!;
    const { scores } = stage(result([0.1, 0.02], [0.3, 0.9], [0.2, 0.01], [0.1, 0.2]));
    const f32 = (values: number[]) => values.map(Math.fround);
    expect(Array.from(scores[1])).toEqual(f32([0.3, 0.9])); // click: uncalibrated
    expect(Array.from(scores[2])).toEqual(f32([0.3, 0.505])); // cart: lifted to 0.6, held at click's 0.3
    expect(Array.from(scores[0])).toEqual(f32([0.3, 0.505])); // purchase: lifted to 0.55 and 0.51, held at cart's
    // Not a funnel step: calibrated, not held below anything.
    expect(Array.from(scores[3])).toEqual(f32([0.55, 0.6]));
  });

  it('leaves what no calibrator touches as the engine gave it', () => {
    expect(outputStage([null, null, null, null], tasks)).toBeUndefined();
    expect(outputStage(undefined, tasks)).toBeUndefined();
  });
});
