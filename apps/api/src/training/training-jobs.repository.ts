import { randomUUID } from 'node:crypto';
import { InjectQueue } from '@nestjs/bull';
import { Injectable } from '@nestjs/common';
import type { Job, JobStatus, Queue } from 'bull';

import {
  readTrainingOutcome,
  TRAINING_QUEUE,
  TrainingJobName,
  type SkippedTrainingRun,
  type TrainingJobPayload,
  type TrainingJobProgress,
  type TrainingJobResult,
} from '@app/queue';
import { withRedisDeadline } from '@app/redis';

/** A training job as Bull holds it, in plain fields. */
export interface TrainingJobRecord {
  id: string;
  name: string;
  state: string;
  data: Record<string, unknown>;
  progress: TrainingJobProgress | null;
  attemptsMade: number;
  maxAttempts: number;
  failedReason: string | null;
  result: TrainingJobResult | null;
  /** A scheduled run that found nothing to train on (completed, nothing registered). */
  skipped: SkippedTrainingRun['skipped'] | null;
  /** A run of the repeatable schedule (removing it would end the schedule's chain of runs). */
  repeated: boolean;
  /** Epoch ms. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

const LISTED_STATES: JobStatus[] = ['active', 'waiting', 'delayed', 'paused', 'completed', 'failed'];

/** The training queue, seen from the admin API: enqueue, inspect, remove. */
@Injectable()
export class TrainingJobsRepository {
  constructor(@InjectQueue(TRAINING_QUEUE) private readonly queue: Queue) {}

  async add(payload: TrainingJobPayload): Promise<TrainingJobRecord> {
    // A unique id (not Bull's counter, which restarts with an emptied Redis): the worker finds a job's version by it.
    return this.toRecord(
      await withRedisDeadline(this.queue.add(TrainingJobName.Train, payload, { jobId: randomUUID() })),
    );
  }

  async get(id: string): Promise<TrainingJobRecord | undefined> {
    const job = await this.queue.getJob(id);
    return job ? this.toRecord(job) : undefined;
  }

  /** The `limit` most recently created jobs, whatever their state, newest first. */
  async listRecent(limit: number): Promise<TrainingJobRecord[]> {
    // Each state's list is ordered newest first, so the newest `limit` overall are among the first `limit` of each.
    const jobs = (await this.queue.getJobs(LISTED_STATES, 0, limit - 1)).filter((job): job is Job => job !== null);
    jobs.sort((a, b) => b.timestamp - a.timestamp);
    return Promise.all(jobs.slice(0, limit).map((job) => this.toRecord(job)));
  }

  /** Removes a job no worker holds; false when one does (or it is gone). */
  async remove(id: string): Promise<boolean> {
    const job = await this.queue.getJob(id);
    if (!job) return false;
    return job.remove().then(
      () => true,
      // Bull refuses to remove a job whose lock a worker holds.
      () => false,
    );
  }

  private async toRecord(read: Job): Promise<TrainingJobRecord> {
    const state = await read.getState();
    // The job's fields were read before its state: one that finished in between would show 'completed' with no result
    // (or 'failed' with no reason), so it is read again; Bull writes a finish and its state in one script.
    const job =
      (state === 'completed' || state === 'failed') && read.finishedOn === undefined
        ? ((await this.queue.getJob(read.id)) ?? read)
        : read;
    const progress: unknown = job.progress();
    return {
      id: String(job.id),
      name: job.name,
      state,
      data: job.data as Record<string, unknown>,
      // Bull reports 0 until the worker first sets it.
      progress: typeof progress === 'object' && progress !== null ? (progress as TrainingJobProgress) : null,
      attemptsMade: job.attemptsMade,
      maxAttempts: job.opts.attempts ?? 1,
      failedReason: job.failedReason ?? null,
      ...readTrainingOutcome(job.returnvalue),
      repeated: job.opts.repeat !== undefined,
      createdAt: job.timestamp,
      startedAt: job.processedOn ?? null,
      finishedAt: job.finishedOn ?? null,
    };
  }
}
