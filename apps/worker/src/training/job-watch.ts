import type { Job } from 'bull';

import { TrainingStoppedError } from './training.errors';

/**
 * Whether the job should go on: not once it is cancelled (a flag the admin API raises), nor once this worker no
 * longer holds its lock (declared stalled and handed to another worker). Bull renews the lock on its own but does not
 * say when renewal stops working; training on would be wasted and registering the result would race the new owner.
 */
export class JobWatch {
  private stopped: string | undefined;
  private lastCheck = -Infinity;

  constructor(
    private readonly job: Job,
    private readonly lockMs: number,
    private readonly isCancelled: () => Promise<boolean>,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** For the trainer's shouldStop, which is sync: answers from the last check and starts a new one now and then. */
  readonly shouldStop = (): boolean => {
    if (this.stopped === undefined && this.now() - this.lastCheck >= this.intervalMs) {
      this.lastCheck = this.now();
      // Redis unreachable says nothing either way; the next check, or confirm() before the commit, decides.
      this.check().then(
        (reason) => (this.stopped ??= reason),
        () => undefined,
      );
    }
    return this.stopped !== undefined;
  };

  /** Throws TrainingStoppedError if the job should stop; called at the start and right before anything is committed. */
  async confirm(): Promise<void> {
    const reason = this.stopped ?? (await this.check());
    if (reason !== undefined) throw new TrainingStoppedError(`job ${this.job.id}: ${reason}`);
  }

  /** For a failed step: the reason this watch stopped it, if it did, else the error itself. */
  cause(error: unknown): unknown {
    return this.stopped === undefined ? error : new TrainingStoppedError(`job ${this.job.id}: ${this.stopped}`);
  }

  private async check(): Promise<string | undefined> {
    if (await this.isCancelled()) return 'cancelled';
    // Extending succeeds only with our own token; it is what Bull's renewal does, so an extra call changes nothing.
    if ((await this.job.extendLock(this.lockMs)) !== 1)
      return 'this worker no longer holds the job (taken over after a stall)';
    return undefined;
  }
}
