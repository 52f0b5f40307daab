/**
 * The state of the two user-level alternatives to the policy's clustered DeLong that bench:rollout measures, in the
 * bins of task-aggregate.ts: a streaming bootstrap over users of the AUC, and the per-user AUC averaged over users
 * (GAUC, weighted by impressions) with its variance across users, which needs every user's score histogram.
 */
import { SCORE_BINS, scoreBin, type Rng } from '@app/mmoe';

export class UserHistograms {
  /** Per user and bin: negatives, positives. */
  private readonly counts: Uint32Array;
  /** Per user: its occupied bins in the order first used, how many, and their range. */
  private readonly occupied: Uint16Array;
  private readonly occupiedCount: Uint16Array;
  private readonly lowest: Uint16Array;
  private readonly highest: Uint16Array;
  private readonly impressions: Uint32Array;
  private readonly positives: Uint32Array;
  /** Users with a prediction, in order of arrival. */
  private readonly active: number[] = [];
  private lo = SCORE_BINS;
  private hi = -1;

  constructor(users: number) {
    this.counts = new Uint32Array(users * SCORE_BINS * 2);
    this.occupied = new Uint16Array(users * SCORE_BINS);
    this.occupiedCount = new Uint16Array(users);
    this.lowest = new Uint16Array(users);
    this.highest = new Uint16Array(users);
    this.impressions = new Uint32Array(users);
    this.positives = new Uint32Array(users);
  }

  /** Users with a prediction. */
  get users(): number {
    return this.active.length;
  }

  add(user: number, probability: number, label: number): void {
    const bin = scoreBin(probability);
    const at = (user * SCORE_BINS + bin) * 2;
    if (this.impressions[user] === 0) {
      this.active.push(user);
      this.lowest[user] = bin;
      this.highest[user] = bin;
    }
    if (this.counts[at] + this.counts[at + 1] === 0) {
      this.occupied[user * SCORE_BINS + this.occupiedCount[user]++] = bin;
      if (bin < this.lowest[user]) this.lowest[user] = bin;
      if (bin > this.highest[user]) this.highest[user] = bin;
      if (bin < this.lo) this.lo = bin;
      if (bin > this.hi) this.hi = bin;
    }
    const positive = label > 0.5 ? 1 : 0;
    this.counts[at + positive]++;
    this.impressions[user]++;
    this.positives[user] += positive;
  }

  /** Empties the state for the next rollout, touching only what was used. */
  clear(): void {
    for (const user of this.active) {
      for (let k = 0; k < this.occupiedCount[user]; k++) {
        const at = (user * SCORE_BINS + this.occupied[user * SCORE_BINS + k]) * 2;
        this.counts[at] = 0;
        this.counts[at + 1] = 0;
      }
      this.occupiedCount[user] = 0;
      this.impressions[user] = 0;
      this.positives[user] = 0;
    }
    this.active.length = 0;
    this.lo = SCORE_BINS;
    this.hi = -1;
  }

  /**
   * GAUC: each user's AUC over their own predictions (users with both labels), averaged weighted by their number, and
   * its variance across those users (delta method on the ratio Σ n_u·AUC_u / Σ n_u).
   */
  gauc(): { gauc: number; variance: number; users: number } {
    const { counts } = this;
    const perUser: { n: number; auc: number }[] = [];
    let weight = 0;
    let weighted = 0;
    for (const user of this.active) {
      const n = this.impressions[user];
      const m = this.positives[user];
      if (m === 0 || m === n) continue;
      const auc = histogramAuc(counts, this.lowest[user], this.highest[user], user * SCORE_BINS * 2);
      perUser.push({ n, auc });
      weight += n;
      weighted += n * auc;
    }
    const K = perUser.length;
    if (K < 2) return { gauc: NaN, variance: NaN, users: K };
    const gauc = weighted / weight;
    let ss = 0;
    for (const { n, auc } of perUser) ss += (n * (auc - gauc)) ** 2;
    return { gauc, variance: ((K / (K - 1)) * ss) / (weight * weight), users: K };
  }
}

/**
 * The Poisson bootstrap over users as a stream (Chamandy, Muralidharan, Najmi & Naidu 2012, "Estimating uncertainty
 * for massive data streams"): every user carries `replicates` Poisson(1) weights, drawn once, and each replicate keeps
 * the arm's pooled score histogram with every prediction counted its user's weight times. The state is additive like
 * the policy's (replicates × one pooled histogram per arm; weights a hash of the user could give in production), and
 * a look reads each replicate's AUC: the variance of AUC(canary) − AUC(production) over replicates.
 */
export class StreamingBootstrap {
  /** Per replicate: negatives, positives per bin, then the unweighted histogram (the estimate itself). */
  private readonly histograms: Float64Array;
  private lo = SCORE_BINS;
  private hi = -1;

  constructor(
    readonly replicates: number,
    /** Per user, its replicates' weights. */
    private readonly weights: Uint8Array,
  ) {
    this.histograms = new Float64Array((replicates + 1) * SCORE_BINS * 2);
  }

  /** Poisson(1) weights for `users` users × `replicates`. */
  static weights(users: number, replicates: number, rng: Rng): Uint8Array {
    return Uint8Array.from({ length: users * replicates }, () => poisson1(rng));
  }

  add(user: number, probability: number, label: number): void {
    const bin = scoreBin(probability);
    if (bin < this.lo) this.lo = bin;
    if (bin > this.hi) this.hi = bin;
    const { histograms, replicates, weights } = this;
    const at = 2 * bin + (label > 0.5 ? 1 : 0);
    const stride = SCORE_BINS * 2;
    const w = user * replicates;
    for (let r = 0; r < replicates; r++) histograms[r * stride + at] += weights[w + r];
    histograms[replicates * stride + at]++;
  }

  /** The arm's AUC, over all its predictions (replicate undefined) or in one replicate. */
  auc(replicate = this.replicates): number {
    return histogramAuc(this.histograms, this.lo, this.hi, replicate * SCORE_BINS * 2);
  }

  /** Variance over the replicates of AUC(this) − AUC(other); the two arms' users draw independent weights. */
  differenceVariance(other: StreamingBootstrap): number {
    let sum = 0;
    let sumSquares = 0;
    for (let r = 0; r < this.replicates; r++) {
      const d = this.auc(r) - other.auc(r);
      sum += d;
      sumSquares += d * d;
    }
    return (sumSquares - (sum * sum) / this.replicates) / (this.replicates - 1);
  }
}

/**
 * AUC of a histogram stored as (negatives, positives) per bin from `offset`, over bins lo..hi: the share of
 * (positive, negative) pairs ordered right, ties within a bin ½.
 */
function histogramAuc(h: ArrayLike<number>, lo: number, hi: number, offset = 0): number {
  let negatives = 0;
  let positives = 0;
  let right = 0;
  for (let b = lo; b <= hi; b++) {
    const neg = h[offset + 2 * b];
    const pos = h[offset + 2 * b + 1];
    right += pos * (negatives + neg / 2);
    negatives += neg;
    positives += pos;
  }
  return right / (positives * negatives);
}

const E_INV = Math.exp(-1);

/** A Poisson(1) count, by inversion. */
function poisson1(rng: Rng): number {
  const u = rng.next();
  let k = 0;
  let p = E_INV;
  let cdf = p;
  while (u > cdf && k < 20) {
    k++;
    p /= k;
    cdf += p;
  }
  return k;
}
