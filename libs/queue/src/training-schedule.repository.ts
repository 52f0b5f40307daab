import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';

import { REDIS } from '@app/redis';

import { QUEUE_PREFIX } from './training-queue.contract';

/** The cluster's retraining schedule, as stored. */
export interface RetrainSchedule {
  cron: string;
  windowDays: number;
  paused: boolean;
  /** ISO timestamp. */
  updatedAt: string;
  /** 'config' for the seed, else the admin actor. */
  updatedBy: string;
}

const SCHEDULE_KEY = `${QUEUE_PREFIX}:training-schedule`;

/** The stored retraining schedule (Bull's repeatable job that carries it out is the runner's). */
@Injectable()
export class TrainingScheduleRepository {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

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
}
