import type { TrainProgress } from './trainer';

/**
 * Seconds left in a training run, from the wall-clock pace since the first update it saw: validation between epochs
 * is part of the pace, the setup before training is not. Feed it every update, shown or not.
 */
export class TrainingEta {
  private origin: { time: number; stepsDone: number } | undefined;

  /** After progress `p` at `nowMs`; undefined until at least one step has been timed. */
  secondsLeft(p: TrainProgress, nowMs: number): number | undefined {
    const stepsDone = (p.epoch - 1) * p.steps + p.step;
    this.origin ??= { time: nowMs, stepsDone };
    const measured = stepsDone - this.origin.stepsDone;
    return measured > 0 ? ((p.epochs * p.steps - stepsDone) * (nowMs - this.origin.time)) / measured / 1000 : undefined;
  }
}
