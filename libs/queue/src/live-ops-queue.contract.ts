import type { JobOptions } from 'bull';
import { z } from 'zod';

/**
 * The queue of the API's periodic cluster chores, each a repeatable job run by RepeatableJobRunner: one per
 * cluster, each tick run by one API process.
 */
export const LIVE_OPS_QUEUE = 'live-ops';

export const LiveOpsJobName = {
  /** Checks the canary against its rollout policy: promotes, rejects, or ends the test inconclusive. */
  RolloutPolicy: 'rollout-policy',
  /** Creates the prediction log's day partitions ahead and drops those (and the live state) past the retention. */
  PredictionLogPartitions: 'prediction-log-partitions',
  /** Joins newly stored events with the predictions they label, updating the live metrics and the policy's state. */
  LiveJoin: 'live-join',
} as const;
export type LiveOpsJobName = (typeof LiveOpsJobName)[keyof typeof LiveOpsJobName];

/** The data of every live-ops job: none (each run reads what it needs when it runs). */
export const liveOpsJobData = z.strictObject({});

/** Only the last few outcomes are kept, for inspection (a failed tick is not retried: the next tick is the retry). */
export const LIVE_OPS_JOB_OPTIONS: JobOptions = { attempts: 1, removeOnComplete: 20, removeOnFail: 50 };
