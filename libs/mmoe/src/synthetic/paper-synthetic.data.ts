import { fnv1a32 } from '../util/hash';
import { Rng } from '../util/random';
import { dot, gaussianVector } from '../util/vector';

/**
 * The synthetic regression data of the MMoE paper (Ma et al., KDD 2018, §4.1), where the correlation of two tasks is
 * a knob: p = cos(w1, w2).
 *
 *   u1 ⟂ u2 unit vectors in R^d,  w1 = c·u1,  w2 = c·(p·u1 + √(1−p²)·u2),  x ~ N(0, I),
 *   y_k = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i) + ε_k.
 *
 * Generation is two steps so that train and test cannot end up with different tasks: `createTaskPair` draws
 * everything that defines the tasks (u, w, α, β), and `sampleSplits` draws every split of one data set from that pair,
 * each split from its own stream so that no two splits repeat the same rows.
 */

export interface TaskPairOptions {
  /** Task correlation p = cos(w1, w2), in [−1, 1]. */
  p: number;
  /** Seed for u1, u2, α, β. It does not depend on p, so one seed gives the same directions and sines for every p. */
  seed: number;
  /** Input dimension d (paper: 100). */
  dim?: number;
  /** Scale c = ‖w1‖ = ‖w2‖ (paper: 1). */
  c?: number;
  /** Number of sine terms m (paper: 10). */
  m?: number;
  /**
   * Standard deviation of ε. The paper writes ε ~ N(0, 0.01); read as a variance, that is std 0.1.
   * Some public reimplementations read 0.01 as the std instead.
   */
  noiseStd?: number;
}

/** Everything that defines the two tasks; shared by all splits sampled from it. Treat as immutable. */
export interface TaskPair {
  readonly dim: number;
  readonly p: number;
  readonly c: number;
  readonly noiseStd: number;
  readonly u1: Float64Array;
  readonly u2: Float64Array;
  readonly w1: Float64Array;
  readonly w2: Float64Array;
  readonly alpha: Float64Array;
  readonly beta: Float64Array;
}

export interface SyntheticSplit {
  n: number;
  dim: number;
  /** n·dim, row-major. */
  x: Float32Array;
  y1: Float32Array;
  y2: Float32Array;
  /** The pair's weights (same arrays for every split of the pair), for checking what a model recovered. */
  w1: Float64Array;
  w2: Float64Array;
}

export function createTaskPair(options: TaskPairOptions): TaskPair {
  const { p, seed, dim = 100, c = 1, m = 10, noiseStd = 0.1 } = options;
  if (!Number.isInteger(dim) || dim < 2) throw new RangeError(`dim must be an integer ≥ 2, got ${dim}`);
  if (!(p >= -1 && p <= 1)) throw new RangeError(`p must be in [-1, 1], got ${p}`);
  if (!Number.isFinite(c)) throw new RangeError(`c must be finite, got ${c}`);
  if (!Number.isInteger(m) || m < 0) throw new RangeError(`m must be an integer ≥ 0, got ${m}`);
  if (!(noiseStd >= 0)) throw new RangeError(`noiseStd must be ≥ 0, got ${noiseStd}`);

  const rng = new Rng(seed);
  // Gram–Schmidt on two Gaussian vectors; two such vectors are linearly independent with probability 1.
  const u1 = normalize(gaussianVector(rng, dim));
  const u2 = gaussianVector(rng, dim);
  const proj = dot(u2, u1);
  for (let j = 0; j < dim; j++) u2[j] -= proj * u1[j];
  normalize(u2);

  const q = Math.sqrt(1 - p * p);
  const w1 = new Float64Array(dim);
  const w2 = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    w1[j] = c * u1[j];
    w2[j] = c * (p * u1[j] + q * u2[j]);
  }
  const alpha = gaussianVector(rng, m);
  const beta = gaussianVector(rng, m);
  return { dim, p, c, noiseStd, u1, u2, w1, w2, alpha, beta };
}

/**
 * The Pearson correlation of the two labels y1, y2 in expectation over x and ε, in closed form. p is the correlation of
 * the linear parts s_k = w_kᵀx only; the sines bend it (the paper uses p as the knob, not as the labels' correlation).
 * With s1, s2 ~ N(0, c²) of correlation p: Stein's lemma gives E[s1·sin(α·s2 + β)] = p·c²·α·e^(−α²c²/2)·cos β, and
 * for Z ~ N(0, v), E[cos(Z + θ)] = e^(−v/2)·cos θ gives every sine–sine term through sin A·sin B = ½(cos(A−B) − cos(A+B)).
 */
export function expectedLabelCorrelation(pair: TaskPair): number {
  const { p, c, alpha, beta, noiseStd } = pair;
  const v = c * c;
  const covariance = (rho: number) => {
    let cov = rho * v;
    for (let i = 0; i < alpha.length; i++) {
      const [a, b] = [alpha[i], beta[i]];
      cov += 2 * rho * v * a * Math.exp((-a * a * v) / 2) * Math.cos(b);
      for (let j = 0; j < alpha.length; j++) {
        const [a2, b2] = [alpha[j], beta[j]];
        const minus = Math.exp((-v * (a * a + a2 * a2 - 2 * rho * a * a2)) / 2) * Math.cos(b - b2);
        const plus = Math.exp((-v * (a * a + a2 * a2 + 2 * rho * a * a2)) / 2) * Math.cos(b + b2);
        const means = Math.exp((-v * (a * a + a2 * a2)) / 2) * Math.sin(b) * Math.sin(b2);
        cov += (minus - plus) / 2 - means;
      }
    }
    return cov;
  };
  return covariance(p) / (covariance(1) + noiseStd * noiseStd);
}

/**
 * Samples named splits, e.g. `{ train: 10000, validation: 1000, test: 1000 }`, from one task pair.
 * Each split's stream is derived from `seed` and its name, so splits never share rows, and adding or resizing one
 * split leaves the others unchanged.
 */
export function sampleSplits<K extends string>(
  pair: TaskPair,
  sizes: Readonly<Record<K, number>>,
  seed: number,
): Record<K, SyntheticSplit> {
  const out = {} as Record<K, SyntheticSplit>;
  for (const name of Object.keys(sizes) as K[]) {
    const n = sizes[name];
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`size of split "${name}" must be an integer ≥ 0, got ${n}`);
    out[name] = sampleRows(pair, n, new Rng(seed ^ fnv1a32(name, 'utf16')));
  }
  return out;
}

/** CSV rows without file IO: the header `x0 … x{dim−1}, y1, y2`, then one row per example. */
export function* syntheticCsvRows(split: SyntheticSplit): Generator<string[]> {
  const { n, dim, x, y1, y2 } = split;
  const header: string[] = [];
  for (let j = 0; j < dim; j++) header.push(`x${j}`);
  header.push('y1', 'y2');
  yield header;
  for (let r = 0; r < n; r++) {
    const row: string[] = [];
    for (let j = 0; j < dim; j++) row.push(formatFloat32(x[r * dim + j]));
    row.push(formatFloat32(y1[r]), formatFloat32(y2[r]));
    yield row;
  }
}

function sampleRows(pair: TaskPair, n: number, rng: Rng): SyntheticSplit {
  const { dim, w1, w2, noiseStd } = pair;
  const x = new Float32Array(n * dim);
  const y1 = new Float32Array(n);
  const y2 = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const row = r * dim;
    let s1 = 0;
    let s2 = 0;
    for (let j = 0; j < dim; j++) {
      // Targets are computed from the float32 x that is stored, so the stored rows satisfy the formula exactly.
      x[row + j] = rng.gaussian();
      const v = x[row + j];
      s1 += w1[j] * v;
      s2 += w2[j] * v;
    }
    y1[r] = response(pair, s1) + noiseStd * rng.gaussian();
    y2[r] = response(pair, s2) + noiseStd * rng.gaussian();
  }
  return { n, dim, x, y1, y2, w1, w2 };
}

/** s + Σ sin(α_i·s + β_i); both tasks share α and β, so they differ only through w. */
function response(pair: TaskPair, s: number): number {
  let y = s;
  for (let i = 0; i < pair.alpha.length; i++) y += Math.sin(pair.alpha[i] * s + pair.beta[i]);
  return y;
}

function normalize(v: Float64Array): Float64Array {
  const norm = Math.sqrt(dot(v, v));
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}

/** 9 significant digits always read back to the same float32; Number() then drops trailing zeros. */
function formatFloat32(v: number): string {
  return String(Number(v.toPrecision(9)));
}
