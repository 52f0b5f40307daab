import { randomUUID } from 'node:crypto';
import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bull';
import type Redis from 'ioredis';

import { CRON_TIMEZONE } from '@app/config';
import { REDIS } from '@app/redis';

import {
  QUEUE_PREFIX,
  RETRAIN_SCHEDULE_JOB_ID,
  TRAINING_QUEUE,
  TrainingJobName,
  type ScheduledRetrainPayload,
} from './training-queue.contract';

/** The cluster's retraining schedule, as stored in Redis. */
export interface RetrainSchedule {
  cron: string;
  windowDays: number;
  paused: boolean;
  /** ISO timestamp. */
  updatedAt: string;
  /** 'config' for the seed, else the admin actor. */
  updatedBy: string;
}

/** One repeatable job registered in Bull under RETRAIN_SCHEDULE_JOB_ID. */
export interface RepeatableRetrain {
  key: string;
  cron: string | null;
  tz: string | null;
  /** Epoch ms of the next run. */
  next: number;
}

const SCHEDULE_KEY = `${QUEUE_PREFIX}:training-schedule`;
const LOCK_KEY = `${SCHEDULE_KEY}:lock`;
/** Longer than any schedule change takes (a few Redis round trips), short enough that a crashed holder blocks little. */
const LOCK_MS = 5_000;
const LOCK_POLL_MS = 25;
/** Deletes the lock only if it is still ours: after an expiry another process may hold it. */
const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/** The stored schedule, the lock that serialises changes to it, and Bull's repeatable jobs that carry it out. */
@Injectable()
export class TrainingScheduleRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @InjectQueue(TRAINING_QUEUE) private readonly queue: Queue,
  ) {}

  async read(): Promise<RetrainSchedule | null> {
    const stored = await this.redis.get(SCHEDULE_KEY);
    return stored === null ? null : (JSON.parse(stored) as RetrainSchedule);
  }

  /** Stores `schedule` unless one is stored already, and returns the stored one either way (SET NX GET: Redis ≥ 7). */
  async seed(schedule: RetrainSchedule): Promise<RetrainSchedule> {
    const stored = await this.redis.set(SCHEDULE_KEY, JSON.stringify(schedule), 'NX', 'GET');
    return stored === null ? schedule : (JSON.parse(stored) as RetrainSchedule);
  }

  async write(schedule: RetrainSchedule): Promise<void> {
    await this.redis.set(SCHEDULE_KEY, JSON.stringify(schedule));
  }

  /** Runs `work` while holding the cluster-wide schedule lock, waiting for it as long as a holder may keep it. */
  async withLock<T>(work: () => Promise<T>): Promise<T> {
    const token = randomUUID();
    const deadline = Date.now() + 2 * LOCK_MS;
    while ((await this.redis.set(LOCK_KEY, token, 'PX', LOCK_MS, 'NX')) === null) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the training schedule lock');
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
    try {
      return await work();
    } finally {
      await this.redis.eval(RELEASE_LOCK, 1, LOCK_KEY, token);
    }
  }

  async repeatables(): Promise<RepeatableRetrain[]> {
    const jobs = await this.queue.getRepeatableJobs();
    return jobs
      .filter((job) => job.id === RETRAIN_SCHEDULE_JOB_ID)
      .map(({ key, cron, tz, next }) => ({ key, cron: cron ?? null, tz: tz ?? null, next }));
  }

  /** Removes the repeatable job and its next (delayed) run. */
  async removeRepeatable(key: string): Promise<void> {
    await this.queue.removeRepeatableByKey(key);
  }

  async addRepeatable(cron: string, data: ScheduledRetrainPayload): Promise<void> {
    await this.queue.add(TrainingJobName.ScheduledRetrain, data, {
      jobId: RETRAIN_SCHEDULE_JOB_ID,
      repeat: { cron, tz: CRON_TIMEZONE },
    });
  }
}
