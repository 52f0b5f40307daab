import { servedKey, type Granularity, type TaskObservation } from '@app/db';
import {
  BinaryAggregate,
  clusteredAuc,
  clusteredAucCovariance,
  finite,
  normalCdf,
  userCluster,
} from '@app/mmoe/serving';
import { POLICY_USER_BUCKETS } from '@app/registry';

import { GRANULARITY_MS, periodStart } from './live-join.rules';

/** How long aggregates of each granularity are kept: a window is read at the finest granularity that covers it. */
export const AGGREGATE_KEPT_MS: Record<Granularity, number> = {
  minute: 4 * GRANULARITY_MS.hour,
  hour: 4 * GRANULARITY_MS.day,
  day: 32 * GRANULARITY_MS.day,
};
const LONGEST_WINDOW: Record<Granularity, number> = {
  minute: 3 * GRANULARITY_MS.hour,
  hour: 3 * GRANULARITY_MS.day,
  day: Infinity,
};

/**
 * The aggregates that answer a window starting at `since`: minute ones up to 3 hours, hour ones up to 3 days, day
 * ones beyond, from the period holding `since` (so the window starts up to one period early).
 */
export function windowAggregates(since: Date, now = new Date()): { granularity: Granularity; from: Date } {
  const span = now.getTime() - since.getTime();
  const granularity = (['minute', 'hour', 'day'] as const).find((g) => span <= LONGEST_WINDOW[g])!;
  return { granularity, from: periodStart(since, granularity) };
}

/** DeLong's test of b's AUC against a's, with the variance across users. */
export interface AucTest {
  /** Paired when both versions scored mostly the same (request, user, item) keys (a shadow beside production). */
  paired: boolean;
  /** Predictions compared: the shared pairs when paired, else both sides' counts added. */
  count: number;
  /** User buckets (the clusters of the variance) holding predictions. */
  clusters: number;
  difference: number | null;
  standardError: number | null;
  pValue: number | null;
}

/**
 * Paired when most predictions were scored by both (one sample, two scorers: their covariance is subtracted), else
 * the two arms of a canary split as independent samples. Either way, predictions are clustered by user (Obuchowski).
 */
export function aucTest(a: readonly TaskObservation[], b: readonly TaskObservation[]): AucTest {
  const rowsA = a.filter((r) => Number.isFinite(r.score));
  const rowsB = b.filter((r) => Number.isFinite(r.score));
  const byKey = new Map(rowsA.map((r) => [servedKey(r), r]));
  const shared = rowsB.filter((r) => byKey.has(servedKey(r)));
  const paired = shared.length > 0 && shared.length >= 0.5 * Math.min(rowsA.length, rowsB.length);
  const aggregate = (rows: readonly TaskObservation[]) => {
    const out = new BinaryAggregate(POLICY_USER_BUCKETS);
    for (const r of rows) out.add(userCluster(r.userId, POLICY_USER_BUCKETS), r.score, r.label);
    return clusteredAuc(out);
  };
  const first = aggregate(paired ? shared.map((r) => byKey.get(servedKey(r))!) : rowsA);
  const second = aggregate(paired ? shared : rowsB);
  const variance = paired
    ? first.variance + second.variance - 2 * clusteredAucCovariance(first, second)
    : first.variance + second.variance;
  const difference = second.auc - first.auc;
  const standardError = Math.sqrt(Math.max(variance, 0));
  return {
    paired,
    count: paired ? shared.length : rowsA.length + rowsB.length,
    clusters: Math.min(first.clusters, second.clusters),
    difference: finite(difference),
    standardError: finite(standardError),
    pValue: finite(2 * (1 - normalCdf(Math.abs(difference / standardError)))),
  };
}
