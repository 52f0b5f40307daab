/**
 * Offline evaluation metrics. Every function takes an optional `mask` (1 = label present, 0 = missing) because in
 * multi-task data a row often has a label for one task only; masked rows are left out entirely, not scored as 0.
 * AUC, log loss, RMSE and MAE also take optional per-row `weights` (sample weights, ≥ 0): each row then counts w times.
 * Sums are kept in float64 whatever the input type.
 */

/** Float32Array, Float64Array or number[]. */
export type Values = ArrayLike<number>;

export interface BinaryMetrics {
  auc: number;
  logloss: number;
  /** Expected calibration error over ECE_BINS equal-mass bins. */
  ece: number;
  meanPrediction: number;
  labelRate: number;
  /** Rows that took part (mask = 1). */
  count: number;
  /** With group ids only (see gauc). */
  gauc?: number;
  gaucGroups?: number;
  gaucSkippedGroups?: number;
}

export interface RegressionMetrics {
  rmse: number;
  mae: number;
  meanPrediction: number;
  meanLabel: number;
  count: number;
}

/** Probabilities are clipped so that a confident wrong prediction costs ~16 instead of Infinity. */
const PROB_EPS = 1e-7;

/**
 * Exact ROC AUC = Mann–Whitney U / (positives · negatives), where U = R⁺ − n⁺(n⁺+1)/2 with tied scores given their
 * average rank, i.e. a tied positive/negative pair counts ½. U is computed as Σ over positives of
 * (negatives scored lower + ½ negatives tied), which is the same sum, by merging the sorted positive and negative
 * scores: two comparator-free typed-array sorts, O(n log n), well under a second for 1M rows.
 * A label counts as positive when > 0.5. NaN when only one class is present or any included score is NaN.
 */
export function auc(scores: Values, labels: Values, mask?: Uint8Array, weights?: Values): number {
  checkLengths(scores, labels, mask);
  if (weights) return weightedAuc(scores, labels, mask, weights);
  const n = scores.length;
  let nPos = 0;
  let nNeg = 0;
  for (let i = 0; i < n; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    if (Number.isNaN(scores[i])) return NaN; // a NaN would sort last and silently read as the highest score
    if (labels[i] > 0.5) nPos++;
    else nNeg++;
  }
  if (nPos === 0 || nNeg === 0) return NaN;

  const pos = new Float64Array(nPos);
  const neg = new Float64Array(nNeg);
  for (let i = 0, p = 0, q = 0; i < n; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    if (labels[i] > 0.5) pos[p++] = scores[i];
    else neg[q++] = scores[i];
  }
  return aucOfScores(pos, neg);
}

/** U / (n⁺ · n⁻) of the positives' and negatives' scores; sorts both arrays in place. */
function aucOfScores(pos: Float64Array, neg: Float64Array): number {
  pos.sort();
  neg.sort();
  const nPos = pos.length;
  const nNeg = neg.length;
  let u = 0;
  let below = 0; // negatives with score < s
  for (let i = 0; i < nPos;) {
    const s = pos[i];
    let j = i;
    while (j < nPos && pos[j] === s) j++;
    while (below < nNeg && neg[below] < s) below++;
    let tied = below;
    while (tied < nNeg && neg[tied] === s) tied++;
    u += (j - i) * (below + (tied - below) / 2);
    i = j;
  }
  return u / (nPos * nNeg);
}

/**
 * AUC with each positive/negative pair counted w⁺·w⁻ (ties ½): Σ over tie groups in ascending score of the group's
 * positive weight × (negative weight below + ½ its own), over W⁺·W⁻. An index sort, slower than the unweighted
 * typed-array sorts, which is why unweighted metrics keep their own path.
 */
function weightedAuc(scores: Values, labels: Values, mask: Uint8Array | undefined, weights: Values): number {
  if (weights.length !== scores.length) throw new RangeError(`${weights.length} weights for ${scores.length} scores`);
  const included: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    if (Number.isNaN(scores[i])) return NaN;
    included.push(i);
  }
  const order = Uint32Array.from(included).sort((a, b) => scores[a] - scores[b]);
  let u = 0;
  let negativeBelow = 0;
  let positive = 0;
  for (let k = 0; k < order.length;) {
    const s = scores[order[k]];
    let groupPositive = 0;
    let groupNegative = 0;
    for (; k < order.length && scores[order[k]] === s; k++) {
      const i = order[k];
      if (labels[i] > 0.5) groupPositive += weights[i];
      else groupNegative += weights[i];
    }
    u += groupPositive * (negativeBelow + groupNegative / 2);
    negativeBelow += groupNegative;
    positive += groupPositive;
  }
  return positive === 0 || negativeBelow === 0 ? NaN : u / (positive * negativeBelow);
}

export interface GroupedAuc {
  /** Σ_g n_g · AUC_g / Σ_g n_g over the groups holding both classes, n_g = the group's rows (impressions). */
  gauc: number;
  /** Groups that took part. */
  groups: number;
  /** Groups left out because all their rows had one class (their AUC is undefined). */
  skippedGroups: number;
}

/**
 * Group AUC (user-grouped AUC, as torch-rechub and EasyRec report it): the exact AUC within each group, ties counted ½,
 * averaged with each group weighted by its number of rows. `groups` holds a non-negative integer id per row (e.g. the
 * interned user id); a negative id means "no group" and leaves the row out, as a mask of 0 does. Rows are bucketed by
 * a counting sort over the ids, so the cost is one pass plus a sort within each group: O(n log(largest group)).
 * gauc is NaN when no group holds both classes or any included score is NaN.
 */
export function gauc(scores: Values, labels: Values, groups: Values, mask?: Uint8Array): GroupedAuc {
  checkLengths(scores, labels, mask);
  if (groups.length !== scores.length) throw new RangeError(`${groups.length} group ids for ${scores.length} rows`);
  const n = scores.length;
  let maxId = -1;
  for (let i = 0; i < n; i++) {
    const g = groups[i];
    if (!Number.isInteger(g)) throw new RangeError(`group id of row ${i} is not an integer (${g})`);
    if (g > maxId && (mask === undefined || mask[i] !== 0)) maxId = g;
  }
  const positives = new Uint32Array(maxId + 1);
  const rows = new Uint32Array(maxId + 2); // rows[g + 1] = rows of group g, then prefix sums: group g starts at rows[g]
  for (let i = 0; i < n; i++) {
    const g = groups[i];
    if (g < 0 || (mask !== undefined && mask[i] === 0)) continue;
    if (Number.isNaN(scores[i])) return { gauc: NaN, groups: 0, skippedGroups: 0 };
    rows[g + 1]++;
    if (labels[i] > 0.5) positives[g]++;
  }
  let largest = 0;
  for (let g = 0; g <= maxId; g++) {
    largest = Math.max(largest, rows[g + 1]);
    rows[g + 1] += rows[g];
  }
  const order = new Uint32Array(rows[maxId + 1]);
  const next = rows.slice(0, maxId + 1);
  for (let i = 0; i < n; i++) {
    const g = groups[i];
    if (g < 0 || (mask !== undefined && mask[i] === 0)) continue;
    order[next[g]++] = i;
  }

  // One pair of buffers for all groups: views of them are sorted in place.
  const posBuffer = new Float64Array(largest);
  const negBuffer = new Float64Array(largest);
  let weighted = 0;
  let weight = 0;
  let used = 0;
  let skipped = 0;
  for (let g = 0; g <= maxId; g++) {
    const size = rows[g + 1] - rows[g];
    if (size === 0) continue;
    const nPos = positives[g];
    if (nPos === 0 || nPos === size) {
      skipped++;
      continue;
    }
    const pos = posBuffer.subarray(0, nPos);
    const neg = negBuffer.subarray(0, size - nPos);
    for (let k = rows[g], p = 0, q = 0; k < rows[g + 1]; k++) {
      const i = order[k];
      if (labels[i] > 0.5) pos[p++] = scores[i];
      else neg[q++] = scores[i];
    }
    weighted += size * aucOfScores(pos, neg);
    weight += size;
    used++;
  }
  return { gauc: weight === 0 ? NaN : weighted / weight, groups: used, skippedGroups: skipped };
}

/** Mean binary cross-entropy, natural log; labels may be soft (in [0, 1]). */
export function logLoss(probs: Values, labels: Values, mask?: Uint8Array, weights?: Values): number {
  return weightedMean(probs, labels, mask, weights, (p, y) => {
    const q = Math.min(Math.max(p, PROB_EPS), 1 - PROB_EPS);
    return -(y * Math.log(q) + (1 - y) * Math.log(1 - q));
  });
}

export function rmse(preds: Values, labels: Values, mask?: Uint8Array, weights?: Values): number {
  return Math.sqrt(weightedMean(preds, labels, mask, weights, (p, y) => (p - y) * (p - y)));
}

export function mae(preds: Values, labels: Values, mask?: Uint8Array, weights?: Values): number {
  return weightedMean(preds, labels, mask, weights, (p, y) => Math.abs(p - y));
}

/** Σ w·loss(pred, label) / Σ w over the included rows (w = 1 without weights); NaN when they weigh nothing. */
function weightedMean(
  preds: Values,
  labels: Values,
  mask: Uint8Array | undefined,
  weights: Values | undefined,
  loss: (pred: number, label: number) => number,
): number {
  checkLengths(preds, labels, mask);
  if (weights && weights.length !== preds.length)
    throw new RangeError(`${weights.length} weights for ${preds.length} predictions`);
  let sum = 0;
  let total = 0;
  for (let i = 0; i < preds.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    const w = weights ? weights[i] : 1;
    sum += w * loss(preds[i], labels[i]);
    total += w;
  }
  return total === 0 ? NaN : sum / total;
}

export function meanPrediction(preds: Values, mask?: Uint8Array): number {
  return maskedMean(preds, mask);
}

/** Mean label; for 0/1 labels this is the label (e.g. click) rate. */
export function meanLabel(labels: Values, mask?: Uint8Array): number {
  return maskedMean(labels, mask);
}

/**
 * With `groups` (one id per row, see gauc) the report adds gauc and its group counts; with `weights`, AUC and log loss
 * are weighted (the rest is not).
 */
export function binaryMetrics(
  probs: Values,
  labels: Values,
  mask?: Uint8Array,
  groups?: Values,
  weights?: Values,
): BinaryMetrics {
  const metrics: BinaryMetrics = {
    auc: auc(probs, labels, mask, weights),
    logloss: logLoss(probs, labels, mask, weights),
    ece: expectedCalibrationError(probs, labels, mask),
    meanPrediction: meanPrediction(probs, mask),
    labelRate: meanLabel(labels, mask),
    count: countIncluded(probs.length, mask),
  };
  if (groups) {
    const grouped = gauc(probs, labels, groups, mask);
    metrics.gauc = grouped.gauc;
    metrics.gaucGroups = grouped.groups;
    metrics.gaucSkippedGroups = grouped.skippedGroups;
  }
  return metrics;
}

/** Bins of the reliability curve and of ECE. */
export const ECE_BINS = 15;

export interface ReliabilityBin {
  meanPrediction: number;
  labelRate: number;
  count: number;
}

/**
 * The reliability curve over `bins` equal-mass bins: the rows sorted by predicted probability and cut into runs of
 * (almost) equal size, each bin reporting its mean prediction and its label rate. Equal mass rather than equal width
 * because a recommender's probabilities crowd near 0: equal-width bins would leave most of them empty and one bin
 * holding nearly every row. Fewer bins when there are fewer rows than bins.
 */
export function reliabilityCurve(
  probs: Values,
  labels: Values,
  mask?: Uint8Array,
  bins: number = ECE_BINS,
): ReliabilityBin[] {
  checkLengths(probs, labels, mask);
  const rowOf = new Uint32Array(countIncluded(probs.length, mask));
  for (let i = 0, k = 0; i < probs.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    rowOf[k++] = i;
  }
  rowOf.sort((a, b) => probs[a] - probs[b]);
  const m = rowOf.length;
  const count = Math.min(bins, m);
  const curve: ReliabilityBin[] = [];
  for (let b = 0; b < count; b++) {
    const from = Math.floor((b * m) / count);
    const to = Math.floor(((b + 1) * m) / count);
    let p = 0;
    let y = 0;
    for (let k = from; k < to; k++) {
      p += probs[rowOf[k]];
      y += labels[rowOf[k]];
    }
    curve.push({ meanPrediction: p / (to - from), labelRate: y / (to - from), count: to - from });
  }
  return curve;
}

/** ECE = Σ_b (n_b / n) · |mean prediction_b − label rate_b| over the reliability curve's bins; NaN without rows. */
export function expectedCalibrationError(
  probs: Values,
  labels: Values,
  mask?: Uint8Array,
  bins: number = ECE_BINS,
): number {
  const curve = reliabilityCurve(probs, labels, mask, bins);
  let total = 0;
  let sum = 0;
  for (const bin of curve) {
    sum += bin.count * Math.abs(bin.meanPrediction - bin.labelRate);
    total += bin.count;
  }
  return total === 0 ? NaN : sum / total;
}

/** With `weights`, RMSE and MAE are weighted (the means are not). */
export function regressionMetrics(
  preds: Values,
  labels: Values,
  mask?: Uint8Array,
  weights?: Values,
): RegressionMetrics {
  return {
    rmse: rmse(preds, labels, mask, weights),
    mae: mae(preds, labels, mask, weights),
    meanPrediction: meanPrediction(preds, mask),
    meanLabel: meanLabel(labels, mask),
    count: countIncluded(preds.length, mask),
  };
}

function maskedMean(values: Values, mask: Uint8Array | undefined): number {
  if (mask !== undefined && mask.length !== values.length) {
    throw new RangeError(`mask has ${mask.length} entries for ${values.length} values`);
  }
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    sum += values[i];
    count++;
  }
  return count === 0 ? NaN : sum / count;
}

function countIncluded(n: number, mask: Uint8Array | undefined): number {
  if (mask === undefined) return n;
  let count = 0;
  for (let i = 0; i < n; i++) if (mask[i] !== 0) count++;
  return count;
}

/** A length mismatch means predictions and labels are misaligned, which would give a plausible but wrong number. */
function checkLengths(preds: Values, labels: Values, mask: Uint8Array | undefined): void {
  if (labels.length !== preds.length) {
    throw new RangeError(`${preds.length} predictions for ${labels.length} labels`);
  }
  if (mask !== undefined && mask.length !== preds.length) {
    throw new RangeError(`mask has ${mask.length} entries for ${preds.length} predictions`);
  }
}
