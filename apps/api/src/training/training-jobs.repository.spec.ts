import type { Job, Queue } from 'bull';

import { TrainingJobsRepository } from './training-jobs.repository';

/** A job as Bull returns it: fields read from its hash at one moment, its state read from Redis when asked. */
const snapshot = (fields: Partial<Job>, state: string): Job =>
  ({
    id: 'j1',
    name: 'train',
    data: {},
    opts: { attempts: 3 },
    attemptsMade: 0,
    timestamp: 1,
    progress: () => 0,
    getState: async () => state,
    ...fields,
  }) as unknown as Job;

describe('TrainingJobsRepository', () => {
  const result = { versionId: 7, decision: 'canary', reason: 'beats production' };

  it('reads a job again when it finished between reading its fields and its state', async () => {
    // Read while active, state read once it had completed: the first snapshot holds no result.
    const before = snapshot({ processedOn: 2 }, 'completed');
    const after = snapshot({ processedOn: 2, finishedOn: 3, returnvalue: result }, 'completed');
    const queue = { getJob: jest.fn().mockResolvedValueOnce(before).mockResolvedValueOnce(after) };
    const record = await new TrainingJobsRepository(queue as unknown as Queue).get('j1');
    expect(record).toMatchObject({ state: 'completed', result, finishedAt: 3 });
    expect(queue.getJob).toHaveBeenCalledTimes(2);
  });

  it('reads a job once when its fields already show how it ended, or it has not', async () => {
    for (const job of [
      snapshot({ finishedOn: 3, returnvalue: result }, 'completed'),
      snapshot({ finishedOn: 3, failedReason: 'no data' }, 'failed'),
      snapshot({ processedOn: 2 }, 'active'),
    ]) {
      const queue = { getJob: jest.fn().mockResolvedValue(job) };
      await new TrainingJobsRepository(queue as unknown as Queue).get('j1');
      expect(queue.getJob).toHaveBeenCalledTimes(1);
    }
  });
});
