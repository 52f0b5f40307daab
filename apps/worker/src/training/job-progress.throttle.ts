import { TrainingEta, type TrainProgress } from '@app/mmoe';
import type { TrainingJobProgress, TrainingPhase } from '@app/queue';

/**
 * Turns the trainer's per-step callbacks into job progress: each phase change at once, training updates at most
 * once per `intervalMs` (every update is a Redis write and an event to every queue listener), with an ETA from the
 * wall-clock pace since training started, validation between epochs included.
 */
export class JobProgressThrottle {
  private last = -Infinity;
  private readonly eta = new TrainingEta();

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
    const etaSeconds = this.eta.secondsLeft(p, now);
    if (now - this.last < this.intervalMs) return;
    this.last = now;
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
