/**
 * DeLong, DeLong & Clarke-Pearson (1988): the variance of an empirical AUC, and of the difference of two, from the
 * AUC's structural components, without bootstrapping. For a positive x, V10(x) is the share of negatives scored below
 * it (ties ½); for a negative y, V01(y) the share of positives scored above it. AUC = mean V10 = mean V01, and
 * Var(AUC) = s²(V10)/m + s²(V01)/n for m positives and n negatives. Two AUCs measured on the same examples (one
 * request scored by two versions) add the covariance of their components; on disjoint examples (two arms of a
 * split), the variances just add.
 */

import { lowerBound, upperBound } from '../util/sorted';
import type { Values } from './metrics';

export interface AucEstimate {
  auc: number;
  variance: number;
  positives: number;
  negatives: number;
}

export interface AucDifference {
  /** b − a. */
  difference: number;
  standardError: number;
  a: AucEstimate;
  b: AucEstimate;
}

interface Components {
  /** V10 per positive, V01 per negative, in the order the labels list them. */
  v10: Float64Array;
  v01: Float64Array;
}

/** NaN estimates when a class is missing; a label counts as positive when > 0.5, as in auc(). */
export function delongAuc(scores: Values, labels: Values): AucEstimate {
  const c = components(scores, labels);
  return estimate(c);
}

/** Two AUCs on independent samples (e.g. canary users vs production users). */
export function delongUnpaired(
  a: { scores: Values; labels: Values },
  b: { scores: Values; labels: Values },
): AucDifference {
  const ea = delongAuc(a.scores, a.labels);
  const eb = delongAuc(b.scores, b.labels);
  return { difference: eb.auc - ea.auc, standardError: Math.sqrt(ea.variance + eb.variance), a: ea, b: eb };
}

/** Two scorers on the same examples (same labels): the difference's variance includes their covariance. */
export function delongPaired(scoresA: Values, scoresB: Values, labels: Values): AucDifference {
  if (scoresA.length !== scoresB.length) throw new RangeError(`${scoresA.length} scores against ${scoresB.length}`);
  const ca = components(scoresA, labels);
  const cb = components(scoresB, labels);
  const ea = estimate(ca);
  const eb = estimate(cb);
  const m = ca.v10.length;
  const n = ca.v01.length;
  const cov = covariance(ca.v10, cb.v10) / m + covariance(ca.v01, cb.v01) / n;
  const variance = ea.variance + eb.variance - 2 * cov;
  return { difference: eb.auc - ea.auc, standardError: Math.sqrt(Math.max(variance, 0)), a: ea, b: eb };
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf; absolute error < 1.5e-7). */
export function normalCdf(z: number): number {
  if (z === Infinity) return 1;
  if (z === -Infinity) return 0;
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Inverse of normalCdf, p in (0, 1) (Acklam's rational approximation; relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

function components(scores: Values, labels: Values): Components {
  if (scores.length !== labels.length) throw new RangeError(`${scores.length} scores for ${labels.length} labels`);
  let m = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] > 0.5) m++;
  const n = labels.length - m;
  const pos = new Float64Array(m);
  const neg = new Float64Array(n);
  for (let i = 0, p = 0, q = 0; i < labels.length; i++) {
    if (labels[i] > 0.5) pos[p++] = scores[i];
    else neg[q++] = scores[i];
  }
  const sortedPos = Float64Array.from(pos).sort();
  const sortedNeg = Float64Array.from(neg).sort();
  // Each component is a count of the other class below / above (ties ½), found by two binary searches.
  const v10 = pos.map((x) => (lowerBound(sortedNeg, x) + upperBound(sortedNeg, x)) / 2 / n);
  const v01 = neg.map((y) => (2 * m - lowerBound(sortedPos, y) - upperBound(sortedPos, y)) / 2 / m);
  return { v10, v01 };
}

function estimate({ v10, v01 }: Components): AucEstimate {
  const m = v10.length;
  const n = v01.length;
  if (m === 0 || n === 0) return { auc: NaN, variance: NaN, positives: m, negatives: n };
  return {
    auc: mean(v10),
    // A single positive or negative has no sample variance; its term is then unknown, not zero.
    variance: (m > 1 ? covariance(v10, v10) / m : NaN) + (n > 1 ? covariance(v01, v01) / n : NaN),
    positives: m,
    negatives: n,
  };
}

function mean(values: Float64Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample covariance (n − 1 denominator). */
function covariance(x: Float64Array, y: Float64Array): number {
  if (x.length < 2) return NaN;
  const mx = mean(x);
  const my = mean(y);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i] - mx) * (y[i] - my);
  return sum / (x.length - 1);
}
