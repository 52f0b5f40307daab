import type { TrainingJobView } from '../training-jobs.service';
import { mapTrainingJob } from './training-job.dto';

describe('mapTrainingJob', () => {
  const job = (state: string, attemptsMade: number) =>
    ({
      id: 'j',
      name: 'train',
      state,
      data: {},
      progress: null,
      attemptsMade,
      maxAttempts: 3,
      failedReason: null,
      result: null,
      skipped: null,
      repeated: false,
      createdAt: 0,
      startedAt: null,
      finishedAt: null,
    }) as unknown as TrainingJobView;

  it('counts the attempt that completed, which Bull counts only when it fails', () => {
    expect(mapTrainingJob(job('waiting', 0)).attempts).toEqual({ made: 0, max: 3 });
    expect(mapTrainingJob(job('completed', 0)).attempts).toEqual({ made: 1, max: 3 });
    expect(mapTrainingJob(job('completed', 1)).attempts).toEqual({ made: 2, max: 3 });
    expect(mapTrainingJob(job('failed', 3)).attempts).toEqual({ made: 3, max: 3 });
  });
});
