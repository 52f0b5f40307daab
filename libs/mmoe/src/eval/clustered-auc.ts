/**
 * AUC and its variance when predictions come in clusters (a user's impressions share their base rate and taste):
 * Obuchowski (1997), "Nonparametric analysis of clustered ROC curve data", Biometrics 53:567–578 — DeLong's structural
 * components summed per cluster. For a positive x, V10(x) is the share of negatives scored below it (ties ½), for a
 * negative y, V01(y) the share of positives above it; X_k and Y_k are their sums over cluster k's m_k positives and
 * n_k negatives, M and N the totals, K the clusters that hold any prediction. Then AUC = ΣX_k / M and
 *
 *   S10 = K / ((K−1) M) · Σ (X_k − m_k·AUC)²,   S01 = K / ((K−1) N) · Σ (Y_k − n_k·AUC)²,
 *   S11 = K / (K−1) · Σ (X_k − m_k·AUC)(Y_k − n_k·AUC),
 *   Var(AUC) = S10/M + S01/N + 2·S11/(M·N).
 *
 * With one prediction per cluster this is DeLong's variance; the ratio of the two is the design effect. The
 * components are read from the score histograms of a BinaryAggregate (scores within a bin tie), in O(clusters · bins).
 */

import { SCORE_BINS, type BinaryAggregate } from './task-aggregate';

export interface ClusteredAuc {
  /** NaN when a class is missing. */
  auc: number;
  /** Obuchowski's clustered variance; NaN with fewer than two clusters. */
  variance: number;
  /** DeLong's variance, as if every prediction were independent. */
  iidVariance: number;
  positives: number;
  negatives: number;
  /** Clusters holding at least one prediction. */
  clusters: number;
  /**
   * Clusters holding a positive, and a negative: with one class in a single cluster its term of the variance is 0
   * however few the labels (that cluster's X_k is all of M·AUC), so the variance is only as good as these counts.
   */
  positiveClusters: number;
  negativeClusters: number;
  /** Per cluster: m_k, n_k, X_k, Y_k (for the covariance of two AUCs of the same predictions). */
  components: { m: Float64Array; n: Float64Array; x: Float64Array; y: Float64Array };
}

export function clusteredAuc(aggregate: BinaryAggregate): ClusteredAuc {
  const K = aggregate.clusters;
  const d = aggregate.data;
  // Each cluster's counts, and the range of occupied score bins: the only ones the passes below need to visit.
  const m = new Float64Array(K);
  const n = new Float64Array(K);
  let M = 0;
  let N = 0;
  let positiveClusters = 0;
  let negativeClusters = 0;
  for (let k = 0; k < K; k++) {
    const { count, positives } = aggregate.cluster(k);
    m[k] = positives;
    n[k] = count - positives;
    M += m[k];
    N += n[k];
    if (m[k] > 0) positiveClusters++;
    if (n[k] > 0) negativeClusters++;
  }
  const neg = new Float64Array(SCORE_BINS);
  const pos = new Float64Array(SCORE_BINS);
  let lo = SCORE_BINS;
  let hi = -1;
  for (let b = 0, i = aggregate.pooledIndex(0, false); b < SCORE_BINS; b++, i += 2) {
    neg[b] = d[i];
    pos[b] = d[i + 1];
    if (neg[b] === 0 && pos[b] === 0) continue;
    if (b < lo) lo = b;
    hi = b;
  }
  const components = { m, n, x: new Float64Array(K), y: new Float64Array(K) };
  const empty = { positives: M, negatives: N, clusters: 0, positiveClusters, negativeClusters, components };
  if (M <= 0 || N <= 0) return { auc: NaN, variance: NaN, iidVariance: NaN, ...empty };

  // V10 and V01 of a score in each occupied bin, from the pooled histograms.
  const v10 = new Float64Array(SCORE_BINS);
  const v01 = new Float64Array(SCORE_BINS);
  let below = 0;
  for (let b = lo; b <= hi; b++) {
    v10[b] = (below + neg[b] / 2) / N;
    below += neg[b];
  }
  let above = 0;
  for (let b = hi; b >= lo; b--) {
    v01[b] = (above + pos[b] / 2) / M;
    above += pos[b];
  }
  let xTotal = 0;
  let clusters = 0;
  for (let k = 0; k < K; k++) {
    if (m[k] + n[k] === 0) continue;
    clusters++;
    const at = aggregate.binIndex(k, 0, false);
    let x = 0;
    let y = 0;
    for (let b = lo; b <= hi; b++) {
      y += d[at + 2 * b] * v01[b];
      x += d[at + 2 * b + 1] * v10[b];
    }
    components.x[k] = x;
    components.y[k] = y;
    xTotal += x;
  }
  const auc = xTotal / M;

  let s10 = 0;
  let s01 = 0;
  let s11 = 0;
  for (let k = 0; k < K; k++) {
    const dx = components.x[k] - m[k] * auc;
    const dy = components.y[k] - n[k] * auc;
    s10 += dx * dx;
    s01 += dy * dy;
    s11 += dx * dy;
  }
  const f = clusters / (clusters - 1);
  const variance = clusters < 2 ? NaN : f * (s10 / (M * M) + s01 / (N * N) + (2 * s11) / (M * N));

  let iid10 = 0;
  let iid01 = 0;
  for (let b = lo; b <= hi; b++) {
    if (pos[b] !== 0) iid10 += pos[b] * (v10[b] - auc) ** 2;
    if (neg[b] !== 0) iid01 += neg[b] * (v01[b] - auc) ** 2;
  }
  // A single positive or negative has no sample variance: the term is unknown, as in delongAuc().
  const iidVariance = (M > 1 ? iid10 / (M - 1) / M : NaN) + (N > 1 ? iid01 / (N - 1) / N : NaN);
  return {
    auc,
    variance,
    iidVariance,
    positives: M,
    negatives: N,
    clusters,
    positiveClusters,
    negativeClusters,
    components,
  };
}

/**
 * Covariance of two clustered AUCs measured on the same predictions (one request scored by two versions: same
 * clusters, same labels), Obuchowski's S10, S01 and S11 across the two.
 */
export function clusteredAucCovariance(a: ClusteredAuc, b: ClusteredAuc): number {
  const { m, n } = a.components;
  const M = a.positives;
  const N = a.negatives;
  let s10 = 0;
  let s01 = 0;
  let s11 = 0;
  for (let k = 0; k < m.length; k++) {
    const ax = a.components.x[k] - m[k] * a.auc;
    const ay = a.components.y[k] - n[k] * a.auc;
    const bx = b.components.x[k] - m[k] * b.auc;
    const by = b.components.y[k] - n[k] * b.auc;
    s10 += ax * bx;
    s01 += ay * by;
    s11 += ax * by + bx * ay;
  }
  const f = a.clusters / (a.clusters - 1);
  return f * (s10 / (M * M) + s01 / (N * N) + s11 / (M * N));
}

/**
 * log(Σ numerator / Σ denominator) over clusters, with its clustered (delta-method) variance:
 * K/(K−1) · Σ_k (num_k/NUM − den_k/DEN)². The calibration guardrail (Σ prediction / Σ label) and the regression one
 * (Σ squared error / predictions) are such ratios.
 */
export function clusteredLogRatio(
  numerator: ArrayLike<number>,
  denominator: ArrayLike<number>,
): { estimate: number; variance: number; clusters: number } {
  let num = 0;
  let den = 0;
  let clusters = 0;
  for (let k = 0; k < numerator.length; k++) {
    num += numerator[k];
    den += denominator[k];
    if (numerator[k] !== 0 || denominator[k] !== 0) clusters++;
  }
  if (!(num > 0 && den > 0) || clusters < 2) return { estimate: NaN, variance: NaN, clusters };
  let ss = 0;
  for (let k = 0; k < numerator.length; k++) ss += (numerator[k] / num - denominator[k] / den) ** 2;
  return { estimate: Math.log(num / den), variance: (clusters / (clusters - 1)) * ss, clusters };
}
