import type { TrainProgress } from '@app/mmoe';
import type { TrainingJobProgress, TrainingPhase } from '@app/queue';

/**
 * Turns the trainer's per-step callbacks into job progress: each phase change at once, training updates at most
 * once per `intervalMs` (every update is a Redis write and an event to every queue listener), with an ETA from the
 * wall-clock pace since training started, validation between epochs included.
 */
export class JobProgressThrottle {
  private last = -Infinity;
  private origin: { time: number; stepsDone: number } | undefined;

  constructor(
    private readonly report: (progress: TrainingJobProgress) => void,
    private readonly intervalMs = 500,
    private readonly now: () => number = Date.now,
  ) {}

  phase(phase: TrainingPhase): void {
    this.last = this.now();
    this.report({ phase });
  }

  training(p: TrainProgress): void {
    const now = this.now();
    const stepsDone = (p.epoch - 1) * p.steps + p.step;
    this.origin ??= { time: now, stepsDone };
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    const measured = stepsDone - this.origin.stepsDone;
    const etaSeconds =
      measured > 0 ? ((p.epochs * p.steps - stepsDone) * (now - this.origin.time)) / measured / 1000 : undefined;
    this.report({
      phase: 'training',
      epoch: p.epoch,
      epochs: p.epochs,
      step: p.step,
      steps: p.steps,
      loss: p.loss,
      examplesPerSec: Math.round(p.examplesPerSec),
      ...(etaSeconds === undefined ? {} : { etaSeconds: Math.round(etaSeconds) }),
    });
  }
}
