import type { JobOptions } from 'bull';
import { z } from 'zod';

import type { ModelSpecInput } from '@app/mmoe';
import { readRolloutPolicy, ROLLOUT_POLICY_BOUNDS, type RolloutPolicy } from '@app/registry';

/** The one place that names the training queue, its jobs and their payloads (API, worker and tests share it). */
export const TRAINING_QUEUE = 'training';

/**
 * Prefix of every Bull key in Redis (and of the schedule's and the cancellation flags'); a process that opens the
 * queue by hand (a test, a script) must use it too. The braces are a hash tag: on a Redis Cluster every key of the
 * queues lies in one slot, as Bull's scripts (each touching many of a queue's keys) require.
 */
export const QUEUE_PREFIX = '{mmoe}';

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
  /** The repeatable job behind scheduled full retraining; it trains from the latest window of events. */
  ScheduledRetrain: 'scheduled-retrain',
  /** The repeatable job behind scheduled incremental training: a warm start from production on the newer events. */
  ScheduledIncremental: 'scheduled-incremental',
} as const;
export type TrainingJobName = (typeof TrainingJobName)[keyof typeof TrainingJobName];

const bounded = ({ min, max }: { min: number; max: number }, number: z.ZodNumber = z.number()): z.ZodNumber =>
  number.min(min).max(max);
const { confidence, minEvents, tolerance, minUsers, maxHours, maxEvents, ...guardrailBounds } = ROLLOUT_POLICY_BOUNDS;

/**
 * A rollout policy to set on the canary a job produces, its fields and bounds as the API's edge checks them
 * (RolloutPolicyDto), so that a policy queued by another producer (Bull Board's "add job", a script) fails its job
 * before training rather than leave a canary with no policy; which tasks may gate is checked against the job's spec by
 * the worker (before training for a job asked for by hand; before the canary for a cadence's run, which then stays a
 * candidate). Read as readRolloutPolicy reads a stored one: the defaults of what it leaves out, and what the edge once
 * let through (`maxEvents: null`, `tasks: {}`) as what it was taken to mean.
 */
const rolloutPolicy = z
  .strictObject({
    confidence: bounded(confidence).optional(),
    minEvents: bounded(minEvents, z.int()).optional(),
    tolerance: bounded(tolerance).optional(),
    minUsers: bounded(minUsers, z.int()).optional(),
    maxHours: z.number().gt(maxHours.min).max(maxHours.max).optional(),
    maxEvents: bounded(maxEvents, z.int()).nullable().optional(),
    tasks: z
      .record(
        z.string(),
        z.strictObject({
          minEvents: bounded(minEvents, z.int()).optional(),
          tolerance: bounded(tolerance).optional(),
        }),
      )
      .optional(),
    guardrails: z
      .strictObject({
        calibration: bounded(guardrailBounds.calibration).optional(),
        regressionError: bounded(guardrailBounds.regressionError).optional(),
        errorRate: bounded(guardrailBounds.errorRate).optional(),
        latencyP99Ms: bounded(guardrailBounds.latencyP99Ms).optional(),
      })
      .optional(),
  })
  .transform((policy): RolloutPolicy => readRolloutPolicy(policy));

/**
 * Data of the repeatable ScheduledRetrain job (TrainingScheduleService registers it). Bull repeats a job with the data
 * it was registered with, so this carries the window's length, not the window: the worker trains on the events in
 * [due − windowDays days, due), `due` being when the run was due, with the production version's spec, as 'schedule'.
 */
export const scheduledRetrainPayload = z.strictObject({
  windowDays: z.number().positive(),
  /** Warm-start from production (TrainingJobPayload.warmStart) instead of a fresh model. */
  warmStart: z.boolean().optional(),
  /** TrainingJobPayload.overrides.epochs; left out: the spec's. */
  epochs: z.number().int().positive().optional(),
  /** Set on the canary when the gate passes (TrainingJobPayload.rolloutPolicy). */
  rolloutPolicy: rolloutPolicy.optional(),
});
export type ScheduledRetrainPayload = z.infer<typeof scheduledRetrainPayload>;

/**
 * Data of the repeatable ScheduledIncremental job: the worker warm-starts from production on an incremental source
 * ending when the run was due (replaying `replay` older events per new one), for `epochs` epochs, as 'schedule'.
 */
export const scheduledIncrementalPayload = z.strictObject({
  replay: z.number().min(0).max(1),
  epochs: z.number().int().positive(),
  rolloutPolicy: rolloutPolicy.optional(),
});
export type ScheduledIncrementalPayload = z.infer<typeof scheduledIncrementalPayload>;

/** An ISO timestamp, as Date.parse reads it. */
const timestamp = z.string().refine((s) => Number.isFinite(Date.parse(s)), 'Invalid input: expected an ISO timestamp');

/**
 * Logged events (joined with current user and item features) in [from, to), oldest first; the events in the last
 * `holdoutFraction` of the time they span are the evaluation slice.
 */
const eventsSource = z
  .strictObject({ kind: z.literal('events'), from: timestamp, to: timestamp })
  .refine(({ from, to }) => Date.parse(from) < Date.parse(to), { path: ['to'], message: 'to must be after from' });
export type EventsSource = z.infer<typeof eventsSource>;

/** A CSV file on the worker's disk, in the CLI's format; its last `holdoutFraction` of rows is the evaluation slice. */
const csvSource = z.strictObject({ kind: z.literal('csv'), path: z.string().min(1) });
export type CsvSource = z.infer<typeof csvSource>;

/**
 * An incremental window: the events in [where the parent's training rows ended, `to`), the parent being the job's
 * warm start (its version records where: its held-out events are the first of this window), plus `replay` times as
 * many events drawn at random from its lineage's older events (back to TRAINING_REPLAY_DAYS before the window),
 * against forgetting; the replayed events are trained on, never held out.
 */
const incrementalSource = z.strictObject({
  kind: z.literal('incremental'),
  /** The window's end, fixed when the job is queued so that a retry reads the same events. */
  to: timestamp,
  /** Replayed older events per new event, in [0, 1]; 0 by default. */
  replay: z.number().min(0).max(1).optional(),
});
export type IncrementalSource = z.infer<typeof incrementalSource>;

export type TrainingDataSource = EventsSource | CsvSource | IncrementalSource;

const positiveInt = z.number().int().positive();

/**
 * Start from a version's weights instead of a fresh initialisation (see MultiTaskModel.train's `parent`): the one
 * serving production when the job starts, or a version by id. The new version records it as its parent.
 */
const warmStart = z.strictObject({ from: z.union([z.literal('production'), positiveInt]) });
export type WarmStart = z.infer<typeof warmStart>;
const trainingOverrides = z.strictObject({
  epochs: positiveInt.optional(),
  batchSize: positiveInt.optional(),
  learningRate: z.number().positive().optional(),
  seed: z.number().int().optional(),
});
export type TrainingOverrides = z.infer<typeof trainingOverrides>;

/**
 * Data of a Train job. The worker checks every job it takes against this (and a ScheduledRetrain's against
 * scheduledRetrainPayload), whoever queued it; the spec itself is checked as a model spec when the job prepares.
 */
export const trainingJobPayload = z.strictObject({
  source: z.discriminatedUnion('kind', [eventsSource, csvSource, incrementalSource]),
  /** The spec to train; defaults to the parent version's (the production one when no parent is named). */
  spec: z
    .custom<ModelSpecInput>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
      message: 'Invalid input: expected a model spec object',
    })
    .optional(),
  parentVersionId: positiveInt.optional(),
  /** Train from the weights of this version (the parent) rather than from scratch; an `incremental` source needs it. */
  warmStart: warmStart.optional(),
  overrides: trainingOverrides.optional(),
  /**
   * After the gate has judged the candidate, train it one epoch more on the held-out slice before it is registered
   * (its metrics stay the gate's); default: TRAINING_REFIT by the job's kind.
   */
  refit: z.boolean().optional(),
  /** Share of the (time-ordered) data held out as the later evaluation slice. */
  holdoutFraction: z.number().gt(0).lt(1).optional(),
  /**
   * When the gate makes the new version the canary, this policy is set on it (the live rollout policy then promotes
   * or rejects it on its own); without one, promotion is left to a person.
   */
  rolloutPolicy: rolloutPolicy.optional(),
  /**
   * Column that groups the held-out rows for GAUC; events carry `user_id` and `item_id`. Default: `user_id` for
   * events, none for CSV (a CSV names its own column).
   */
  groupBy: z.string().min(1).optional(),
  /** Who asked: 'schedule' or the admin actor. */
  requestedBy: z.string().min(1),
});
export type TrainingJobPayload = z.infer<typeof trainingJobPayload>;

/** A training job's phases, in order. */
export const TRAINING_PHASES = ['dataset', 'training', 'evaluating', 'refitting', 'registering'] as const;
export type TrainingPhase = (typeof TRAINING_PHASES)[number];

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
  /**
   * What the gate compared instead, when production had trained on the slice's earlier rows: both on the held-out
   * rows from production's `trainedTo` (the version's metrics.productionHoldout.unseen).
   */
  unseen?: {
    trainedTo: string;
    rows: number;
    candidate: Record<string, Record<string, number>>;
    production: Record<string, Record<string, number>>;
  };
  decision: 'canary' | 'candidate';
  reason: string;
  /** Rows trained on (early stopping's validation share included) and rows of the held-out slice. */
  examples: { train: number; holdout: number };
  /** Wall time of MultiTaskModel.train. */
  trainingSeconds: number;
}

/**
 * What a scheduled incremental run returns when its window holds no new event: nothing trained or registered, the run
 * recorded as a `skip` in the rollout history (a manual job with an empty window is refused when it is asked for).
 */
export interface SkippedTrainingRun {
  skipped: { reason: string; parentVersionId: number; window: { from: string; to: string } };
}

export type TrainingJobOutcome = TrainingJobResult | SkippedTrainingRun;

/** A training job's outcome, read: what it trained, or its skip; both null when it has none. */
export type ReadTrainingOutcome =
  | { result: TrainingJobResult; skipped: null }
  | { result: null; skipped: SkippedTrainingRun['skipped'] }
  | { result: null; skipped: null };

/**
 * A training job's outcome from Bull's `returnvalue`, for every reader of finished jobs. It has none while the job is
 * unfinished or when it failed (null), when Redis held JSON Bull could not parse (undefined), or when it holds a value
 * of neither shape (Bull's 0 for an empty return, a job of another producer): then both are null, never a throw.
 */
export function readTrainingOutcome(returnvalue: unknown): ReadTrainingOutcome {
  if (typeof returnvalue === 'object' && returnvalue !== null && !Array.isArray(returnvalue)) {
    const { skipped, versionId } = returnvalue as Partial<Record<'skipped' | 'versionId', unknown>>;
    if (typeof skipped === 'object' && skipped !== null)
      return { result: null, skipped: skipped as SkippedTrainingRun['skipped'] };
    if (typeof versionId === 'number') return { result: returnvalue as TrainingJobResult, skipped: null };
  }
  return { result: null, skipped: null };
}
