import { clusteredAuc } from './clustered-auc';
import type { BinaryAggregate, RegressionAggregate } from './task-aggregate';

export interface LiveBinaryMetrics {
  type: 'binary';
  count: number;
  /** From the score histogram on the logit scale (ties within a bin counted ½; see bench:live for the error). */
  auc: number | null;
  /** Impression-weighted mean of the AUC within each request (the ranking it served) that has both labels. */
  gauc: number | null;
  /** Requests that took part in the GAUC. */
  gaucGroups: number;
  logloss: number | null;
  meanPrediction: number | null;
  labelRate: number | null;
}

export interface LiveRegressionMetrics {
  type: 'regression';
  count: number;
  rmse: number | null;
  mae: number | null;
  meanPrediction: number | null;
  meanLabel: number | null;
}

export type LiveTaskMetrics = LiveBinaryMetrics | LiveRegressionMetrics;

/** JSON has no NaN: an undefined metric (one class only, no rows) is reported as null. */
export function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** A binary task's online metrics, read from the aggregate of its labelled predictions (all exact sums but AUC). */
export function liveBinaryMetrics(aggregate: BinaryAggregate): LiveBinaryMetrics {
  const t = aggregate.totals();
  const requests = aggregate.requests();
  return {
    type: 'binary',
    count: t.count,
    auc: finite(clusteredAuc(aggregate).auc),
    gauc: finite(requests.aucSum / requests.weight),
    gaucGroups: requests.requests,
    logloss: finite(t.loglossSum / t.count),
    meanPrediction: finite(t.predictionSum / t.count),
    labelRate: finite(t.labelSum / t.count),
  };
}

/** A regression task's online metrics, all exact sums of its aggregate. */
export function liveRegressionMetrics(aggregate: RegressionAggregate): LiveRegressionMetrics {
  const t = aggregate.totals();
  return {
    type: 'regression',
    count: t.count,
    rmse: finite(Math.sqrt(t.squaredErrorSum / t.count)),
    mae: finite(t.absoluteErrorSum / t.count),
    meanPrediction: finite(t.predictionSum / t.count),
    meanLabel: finite(t.labelSum / t.count),
  };
}
