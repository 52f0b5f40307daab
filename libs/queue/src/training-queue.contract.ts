import type { JobOptions } from 'bull';
import { z } from 'zod';

import type { ModelSpecInput } from '@app/mmoe';

/** The one place that names the training queue, its jobs and their payloads (API, worker and tests share it). */
export const TRAINING_QUEUE = 'training';

/** Prefix of every Bull key in Redis; a process that opens the queue by hand (a test, a script) must use it too. */
export const QUEUE_PREFIX = 'mmoe';

/**
 * The queue's default job options (QueueModule sets them; a hand-made producer must pass them). A failed attempt is
 * retried twice, 15 s then 30 s later, which rides out a restarting Postgres or Redis; the worker discards a job that
 * cannot succeed however often it runs (too little data, a bad spec), so that one fails at once. Finished jobs are
 * kept (the last 500 of each) for the admin API to report on.
 *
 * The worker records the job id on the version it registers (model_versions.training_job_id, unique) and on a retry
 * finishes with that version instead of training again. Bull's own ids are a counter that restarts if Redis loses its
 * data, so producers should give each job a unique `jobId` (randomUUID()).
 */
export const TRAINING_JOB_OPTIONS: JobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 15_000 },
  removeOnComplete: 500,
  removeOnFail: 500,
};

export const TrainingJobName = {
  /** A training run asked for through the admin API (or the demo). */
  Train: 'train',
  /** The repeatable job behind scheduled retraining; it trains from the latest window of events. */
  ScheduledRetrain: 'scheduled-retrain',
} as const;
export type TrainingJobName = (typeof TrainingJobName)[keyof typeof TrainingJobName];

/**
 * Data of the repeatable ScheduledRetrain job (TrainingScheduleService registers it). Bull repeats a job with the data
 * it was registered with, so this carries the window's length, not the window: the worker trains on the events in
 * [due − windowDays days, due), `due` being when the run was due, with the production version's spec, as 'schedule'.
 */
export const scheduledRetrainPayload = z.strictObject({ windowDays: z.number().positive() });
export type ScheduledRetrainPayload = z.infer<typeof scheduledRetrainPayload>;

/**
 * Logged events (joined with current user and item features) in [from, to), oldest first; the events in the last
 * `holdoutFraction` of the time they span are the evaluation slice.
 */
export interface EventsSource {
  kind: 'events';
  /** ISO timestamps. */
  from: string;
  to: string;
}

/** A CSV file on the worker's disk, in the CLI's format; its last `holdoutFraction` of rows is the evaluation slice. */
export interface CsvSource {
  kind: 'csv';
  path: string;
}

export type TrainingDataSource = EventsSource | CsvSource;

export interface TrainingOverrides {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
}

export interface TrainingJobPayload {
  source: TrainingDataSource;
  /** The spec to train; defaults to the parent version's (the production one when no parent is named). */
  spec?: ModelSpecInput;
  parentVersionId?: number;
  overrides?: TrainingOverrides;
  /** Share of the (time-ordered) data held out as the later evaluation slice. */
  holdoutFraction?: number;
  /**
   * Column that groups the held-out rows for GAUC; events carry `user_id` and `item_id`. Default: `user_id` for
   * events, none for CSV (a CSV names its own column).
   */
  groupBy?: string;
  /** Who asked: 'schedule' or the admin actor. */
  requestedBy: string;
}

export type TrainingPhase = 'dataset' | 'training' | 'evaluating' | 'registering';

/** What job.progress() carries, readable at GET /admin/training-jobs/:id. */
export interface TrainingJobProgress {
  phase: TrainingPhase;
  epoch?: number;
  epochs?: number;
  step?: number;
  steps?: number;
  loss?: number;
  examplesPerSec?: number;
  etaSeconds?: number;
}

export interface TrainingJobResult {
  versionId: number;
  /** Metrics of the candidate and of production on the same held-out slice, by task. */
  candidate: Record<string, Record<string, number>>;
  production?: Record<string, Record<string, number>>;
  decision: 'canary' | 'candidate';
  reason: string;
  /** Rows trained on (early stopping's validation share included) and rows of the held-out slice. */
  examples: { train: number; holdout: number };
  /** Wall time of MultiTaskModel.train. */
  trainingSeconds: number;
}
