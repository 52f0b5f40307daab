import type { Job } from 'bull';

import { JobWatch } from './job-watch';
import { TrainingStoppedError } from './training.errors';

describe('JobWatch', () => {
  let now = 0;
  let lock: number;
  let cancelled: boolean;
  let checks: number;
  let watch: JobWatch;
  const flush = () => new Promise((resolve) => setImmediate(resolve));

  beforeEach(() => {
    [now, lock, cancelled, checks] = [0, 1, false, 0];
    const job = { id: '42', extendLock: async () => lock } as unknown as Job;
    watch = new JobWatch(
      job,
      30_000,
      async () => (checks++, cancelled),
      1000,
      () => now,
    );
  });

  it('lets a job go on while it holds its lock and is not cancelled, checking at most once per interval', async () => {
    expect(watch.shouldStop()).toBe(false);
    expect(watch.shouldStop()).toBe(false);
    await flush();
    expect(checks).toBe(1);
    await expect(watch.confirm()).resolves.toBeUndefined();
  });

  it('stops a cancelled job at the next check, and says why', async () => {
    watch.shouldStop();
    cancelled = true;
    now = 999;
    expect(watch.shouldStop()).toBe(false);
    now = 1000;
    watch.shouldStop();
    await flush();
    expect(watch.shouldStop()).toBe(true);
    expect(watch.cause(new Error('training was cancelled'))).toEqual(new TrainingStoppedError('job 42: cancelled'));
  });

  it('refuses to commit once the lock belongs to someone else', async () => {
    lock = 0;
    await expect(watch.confirm()).rejects.toThrow(
      'job 42: this worker no longer holds the job (taken over after a stall)',
    );
  });

  it('passes other errors through', () => {
    const error = new Error('connection refused');
    expect(watch.cause(error)).toBe(error);
  });
});
