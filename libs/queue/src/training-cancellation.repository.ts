import { Inject, Injectable } from '@nestjs/common';

import { REDIS, type RedisClient } from '@app/redis';

import { QUEUE_PREFIX } from './training-queue.contract';

/** Long enough to outlive any training run; the flag is only read while its job runs. */
const CANCEL_TTL_SECONDS = 7 * 24 * 3600;

const cancelKey = (jobId: string): string => `${QUEUE_PREFIX}:training-cancelled:${jobId}`;

/**
 * Cancellation of a running training job. Bull cannot remove a job a worker holds, so the admin API raises a flag in
 * Redis and the worker's shouldStop polls isCancelled(jobId), stopping the job without registering a version.
 */
@Injectable()
export class TrainingCancellationRepository {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  async request(jobId: string): Promise<void> {
    await this.redis.set(cancelKey(jobId), '1', 'EX', CANCEL_TTL_SECONDS);
  }

  async isCancelled(jobId: string): Promise<boolean> {
    return (await this.redis.exists(cancelKey(jobId))) === 1;
  }
}
