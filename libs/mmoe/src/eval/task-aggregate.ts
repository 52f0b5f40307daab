/**
 * Additive summaries of labelled predictions (one model version, one task). Every field is a sum over predictions,
 * so two aggregates merge by adding, and a prediction whose labels change is retracted by adding it again with weight
 * −1: online metrics are then read from a few aggregates, whatever the number of predictions behind them.
 *
 * Predictions are summed per cluster (`clusters` user buckets, see userCluster): the unit of randomisation of a canary
 * split is the user, so the variance of a live metric must be taken across users, not impressions (clustered-auc.ts).
 * A grouping of independent users into buckets is itself a valid clustering, and it is additive, which an exact
 * per-user state would not be at this size. A binary task also keeps, per cluster and label, a histogram of the
 * scores on the logit scale: SCORE_BINS bins of width 1/BINS_PER_LOGIT over [−LOGIT_RANGE, LOGIT_RANGE] (scores
 * outside fall into the end bins). AUC is read from it with the ties within a bin counted ½; bench:live measures the
 * difference from the exact AUC.
 */

import { fnv1a32 } from '../util/hash';

export const LOGIT_RANGE = 12;
export const BINS_PER_LOGIT = 32;
export const SCORE_BINS = 2 * LOGIT_RANGE * BINS_PER_LOGIT;

/** Probabilities are clipped as in logLoss(), so that a confident wrong prediction costs ~16, not Infinity. */
const PROB_EPS = 1e-7;
/** Salt of the user-bucket hash: independent of the canary split (FNV-1a of the bare id), so buckets stay balanced within an arm. */
const CLUSTER_SALT = 'cluster:';

/** The user's bucket in [0, clusters): the cluster its predictions are summed in. Stable across processes. */
export function userCluster(userId: string, clusters: number): number {
  return fnv1a32(CLUSTER_SALT + userId, 'utf8') % clusters;
}

/** The score's bin: its logit, in bins of width 1/BINS_PER_LOGIT from −LOGIT_RANGE, clamped to the end bins. */
export function scoreBin(probability: number): number {
  const logit = Math.log(probability / (1 - probability));
  const bin = Math.floor((logit + LOGIT_RANGE) * BINS_PER_LOGIT);
  // NaN compares false both ways: callers skip non-finite scores before binning.
  return bin < 0 ? 0 : bin >= SCORE_BINS ? SCORE_BINS - 1 : bin;
}

/** Per-cluster sums of a binary task: predictions, positives (label > 0.5), Σ label, Σ prediction, Σ log loss. */
const BINARY_SUMS = 5;
/** Global sums of a binary task: Σ impressions · AUC of each request with both labels, Σ impressions, requests. */
const REQUEST_SUMS = 3;
/** Per-cluster sums of a regression task: predictions, Σ prediction, Σ label, Σ squared error, Σ absolute error. */
const REGRESSION_SUMS = 5;

export type TaskAggregate = BinaryAggregate | RegressionAggregate;

/**
 * A binary task's labelled predictions: sums and score histograms per cluster, the histograms pooled over clusters
 * (kept too when there are several, so that reading AUC needs one pass over the clusters' occupied bins, not all of
 * them), and the per-request AUC sums.
 */
export class BinaryAggregate {
  readonly kind = 'binary';
  readonly data: Float64Array;
  private readonly binsAt: number;
  private readonly pooledAt: number;
  private readonly requestsAt: number;

  constructor(
    readonly clusters: number,
    data?: Float64Array,
  ) {
    this.binsAt = clusters * BINARY_SUMS;
    this.pooledAt = this.binsAt + (clusters > 1 ? clusters * SCORE_BINS * 2 : 0);
    this.requestsAt = this.pooledAt + SCORE_BINS * 2;
    const length = this.requestsAt + REQUEST_SUMS;
    if (data && data.length !== length)
      throw new RangeError(`a binary aggregate of ${clusters} clusters has ${length} fields, not ${data.length}`);
    this.data = data ?? new Float64Array(length);
  }

  /** One prediction (`weight` −1 retracts it). A label counts as positive above 0.5, as in auc(). */
  add(cluster: number, probability: number, label: number, weight = 1): void {
    const d = this.data;
    const s = cluster * BINARY_SUMS;
    const p = Math.min(Math.max(probability, PROB_EPS), 1 - PROB_EPS);
    const positive = label > 0.5;
    const bin = scoreBin(probability);
    d[s] += weight;
    if (positive) d[s + 1] += weight;
    d[s + 2] += weight * label;
    d[s + 3] += weight * probability;
    d[s + 4] -= weight * (label * Math.log(p) + (1 - label) * Math.log(1 - p));
    d[this.binIndex(cluster, bin, positive)] += weight;
    if (this.clusters > 1) d[this.pooledIndex(bin, positive)] += weight;
  }

  /** One request's AUC over its labelled items, weighted by their number (the ranking that request served). */
  addRequest(auc: number, impressions: number, weight = 1): void {
    this.data[this.requestsAt] += weight * impressions * auc;
    this.data[this.requestsAt + 1] += weight * impressions;
    this.data[this.requestsAt + 2] += weight;
  }

  /** Index in `data` of the count of cluster k's predictions in score bin b with the given label. */
  binIndex(cluster: number, bin: number, positive: boolean): number {
    return this.binsAt + (cluster * SCORE_BINS + bin) * 2 + (positive ? 1 : 0);
  }

  /** Index in `data` of the count of all clusters' predictions in score bin b with the given label. */
  pooledIndex(bin: number, positive: boolean): number {
    return this.pooledAt + bin * 2 + (positive ? 1 : 0);
  }

  /** Cluster k's sums. */
  cluster(k: number): BinarySums {
    const s = k * BINARY_SUMS;
    const d = this.data;
    return { count: d[s], positives: d[s + 1], labelSum: d[s + 2], predictionSum: d[s + 3], loglossSum: d[s + 4] };
  }

  /** The sums over all clusters. */
  totals(): BinarySums {
    const t: BinarySums = { count: 0, positives: 0, labelSum: 0, predictionSum: 0, loglossSum: 0 };
    for (let k = 0; k < this.clusters; k++) {
      const c = this.cluster(k);
      t.count += c.count;
      t.positives += c.positives;
      t.labelSum += c.labelSum;
      t.predictionSum += c.predictionSum;
      t.loglossSum += c.loglossSum;
    }
    return t;
  }

  requests(): { aucSum: number; weight: number; requests: number } {
    const d = this.data;
    return { aucSum: d[this.requestsAt], weight: d[this.requestsAt + 1], requests: d[this.requestsAt + 2] };
  }
}

export interface BinarySums {
  count: number;
  positives: number;
  labelSum: number;
  predictionSum: number;
  loglossSum: number;
}

/** A regression task's labelled predictions: sums of predictions, labels and errors per cluster. */
export class RegressionAggregate {
  readonly kind = 'regression';
  readonly data: Float64Array;

  constructor(
    readonly clusters: number,
    data?: Float64Array,
  ) {
    const length = clusters * REGRESSION_SUMS;
    if (data && data.length !== length)
      throw new RangeError(`a regression aggregate of ${clusters} clusters has ${length} fields, not ${data.length}`);
    this.data = data ?? new Float64Array(length);
  }

  add(cluster: number, prediction: number, label: number, weight = 1): void {
    const d = this.data;
    const s = cluster * REGRESSION_SUMS;
    const error = prediction - label;
    d[s] += weight;
    d[s + 1] += weight * prediction;
    d[s + 2] += weight * label;
    d[s + 3] += weight * error * error;
    d[s + 4] += weight * Math.abs(error);
  }

  cluster(k: number): {
    count: number;
    predictionSum: number;
    labelSum: number;
    squaredErrorSum: number;
    absoluteErrorSum: number;
  } {
    const s = k * REGRESSION_SUMS;
    const d = this.data;
    return {
      count: d[s],
      predictionSum: d[s + 1],
      labelSum: d[s + 2],
      squaredErrorSum: d[s + 3],
      absoluteErrorSum: d[s + 4],
    };
  }

  totals(): ReturnType<RegressionAggregate['cluster']> {
    const t = { count: 0, predictionSum: 0, labelSum: 0, squaredErrorSum: 0, absoluteErrorSum: 0 };
    for (let k = 0; k < this.clusters; k++) {
      const c = this.cluster(k);
      t.count += c.count;
      t.predictionSum += c.predictionSum;
      t.labelSum += c.labelSum;
      t.squaredErrorSum += c.squaredErrorSum;
      t.absoluteErrorSum += c.absoluteErrorSum;
    }
    return t;
  }
}

/** Adds `from`, `weight` times, into `into` (same kind and clusters), and returns `into`. */
export function mergeAggregate<A extends TaskAggregate>(into: A, from: TaskAggregate, weight = 1): A {
  if (into.kind !== from.kind || into.clusters !== from.clusters)
    throw new RangeError(
      `cannot merge a ${from.kind} aggregate of ${from.clusters} clusters into a ${into.kind} one of ${into.clusters}`,
    );
  const a = into.data;
  const b = from.data;
  for (let i = 0; i < a.length; i++) if (b[i] !== 0) a[i] += weight * b[i];
  return into;
}
