import type { JobOptions } from 'bull';

/**
 * The queue of the API's periodic cluster chores. Each is one repeatable job per cluster (Bull keeps one schedule
 * per name and interval however many processes register it), and each tick is taken by exactly one API process.
 */
export const LIVE_OPS_QUEUE = 'live-ops';

export const LiveOpsJobName = {
  /** Checks the canary against its rollout policy, and promotes or rejects it. */
  RolloutPolicy: 'rollout-policy',
  /** Creates the prediction log's day partitions ahead and drops those past the retention. */
  PredictionLogPartitions: 'prediction-log-partitions',
} as const;
export type LiveOpsJobName = (typeof LiveOpsJobName)[keyof typeof LiveOpsJobName];

/** A tick that fails is simply retried by the next one; only the last few outcomes are kept, for inspection. */
export const LIVE_OPS_JOB_OPTIONS: JobOptions = { attempts: 1, removeOnComplete: 20, removeOnFail: 50 };
