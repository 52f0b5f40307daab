import { logLoss, Values } from '../eval/metrics';
import { taskType, TaskTypeName } from '../tasks/task-types';

/**
 * Post-hoc probability calibration of binary tasks, fitted on the validation split after training.
 *
 *   platt:    p' = σ(a · logit(p) + b), two parameters fitted by Newton's method on the log loss (Platt 1999, with
 *             his smoothed targets so that a separable validation set does not drive a to infinity);
 *   isotonic: the monotone step function that minimises the squared error (pool-adjacent-violators), served as the
 *             piecewise-linear curve through each block's ends (as scikit-learn interpolates), flat outside.
 *
 * Both are monotone, so they move probabilities without reordering a task's candidates (isotonic may tie some).
 * Nothing here imports tfjs: serving applies a calibrator to whatever engine produced the raw scores.
 */
export type CalibrationMethod = 'none' | 'platt' | 'isotonic' | 'auto';

export type Calibrator = { type: 'platt'; a: number; b: number } | { type: 'isotonic'; x: number[]; y: number[] };

/** Per task in spec order; null = the network's output is served as it is (regression tasks, or "none"). */
export type Calibration = (Calibrator | null)[];

export interface CalibrationFit {
  calibrator: Calibrator | null;
  /** The method chosen (for auto: the one with the lowest held-out log loss). */
  method: Exclude<CalibrationMethod, 'auto'>;
  /** auto only: mean log loss of each method on the half of the validation rows it was not fitted on. */
  crossValidatedLogloss?: Record<'none' | 'platt' | 'isotonic', number>;
}

const EPS = 1e-7;

export function applyCalibrator(c: Calibrator, p: number): number {
  if (c.type === 'platt') return 1 / (1 + Math.exp(-(c.a * logit(p) + c.b)));
  const { x, y } = c;
  if (p <= x[0]) return y[0];
  const last = x.length - 1;
  if (p >= x[last]) return y[last];
  let lo = 0;
  let hi = last; // invariant: x[lo] <= p < x[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] <= p) lo = mid;
    else hi = mid;
  }
  return y[lo] + ((y[hi] - y[lo]) * (p - x[lo])) / (x[hi] - x[lo]);
}

/** Calibrates one task's scores in place. */
export function calibrateInPlace(c: Calibrator | null, scores: Float32Array): void {
  if (!c) return;
  for (let i = 0; i < scores.length; i++) scores[i] = applyCalibrator(c, scores[i]);
}

/** Fits `method` on the rows with mask = 1; `auto` cross-validates none, platt and isotonic, then refits the best. */
export function fitCalibration(
  method: CalibrationMethod,
  probs: Values,
  labels: Values,
  mask?: Uint8Array,
): CalibrationFit {
  const rows = includedRows(probs.length, mask);
  if (method === 'none' || rows.length < 2) return { calibrator: null, method: 'none' };
  if (method !== 'auto') return { calibrator: fitMethod(method, probs, labels, rows), method };

  // Two folds by alternate rows: each method is fitted on one half and scored on the other, both ways. Scoring on the
  // rows it was fitted on would always pick isotonic, which can memorise them.
  const folds = [rows.filter((_, k) => k % 2 === 0), rows.filter((_, k) => k % 2 === 1)];
  const crossValidatedLogloss = { none: 0, platt: 0, isotonic: 0 };
  for (const m of ['none', 'platt', 'isotonic'] as const) {
    for (let f = 0; f < 2; f++) {
      const [fit, held] = [folds[f], folds[1 - f]];
      const c = m === 'none' ? null : fitMethod(m, probs, labels, fit);
      const p = Float64Array.from(held, (i) => (c ? applyCalibrator(c, probs[i]) : probs[i]));
      crossValidatedLogloss[m] +=
        logLoss(
          p,
          Float64Array.from(held, (i) => labels[i]),
        ) / 2;
    }
  }
  const best = (['none', 'platt', 'isotonic'] as const).reduce((a, b) =>
    crossValidatedLogloss[b] < crossValidatedLogloss[a] ? b : a,
  );
  return {
    calibrator: best === 'none' ? null : fitMethod(best, probs, labels, rows),
    method: best,
    crossValidatedLogloss,
  };
}

function fitMethod(method: 'platt' | 'isotonic', probs: Values, labels: Values, rows: Uint32Array): Calibrator {
  return method === 'platt' ? fitPlatt(probs, labels, rows) : fitIsotonic(probs, labels, rows);
}

/** Newton–Raphson on the smoothed-target log loss of σ(a·z + b), z = logit(p), with step halving. */
export function fitPlatt(probs: Values, labels: Values, rows: Uint32Array): Calibrator {
  let nPos = 0;
  for (const i of rows) if (labels[i] > 0.5) nPos++;
  const nNeg = rows.length - nPos;
  const hi = (nPos + 1) / (nPos + 2);
  const lo = 1 / (nNeg + 2);
  const z = Float64Array.from(rows, (i) => logit(probs[i]));
  const t = Float64Array.from(rows, (i) => (labels[i] > 0.5 ? hi : lo));
  const loss = (a: number, b: number): number => {
    let sum = 0;
    for (let k = 0; k < z.length; k++) {
      const f = a * z[k] + b;
      // log(1 + e^f) − t·f, written to stay finite for large |f|.
      sum += (f > 0 ? f + Math.log1p(Math.exp(-f)) : Math.log1p(Math.exp(f))) - t[k] * f;
    }
    return sum;
  };
  let a = 1;
  let b = 0;
  let current = loss(a, b);
  for (let iter = 0; iter < 100; iter++) {
    let ga = 0;
    let gb = 0;
    let haa = 1e-12;
    let hab = 0;
    let hbb = 1e-12;
    for (let k = 0; k < z.length; k++) {
      const p = 1 / (1 + Math.exp(-(a * z[k] + b)));
      const d = p - t[k];
      const w = p * (1 - p);
      ga += d * z[k];
      gb += d;
      haa += w * z[k] * z[k];
      hab += w * z[k];
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(Math.abs(det) > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    let step = 1;
    let next = loss(a - da, b - db);
    while (next > current && step > 1e-6) {
      step /= 2;
      next = loss(a - step * da, b - step * db);
    }
    if (next > current) break;
    a -= step * da;
    b -= step * db;
    const gain = current - next;
    current = next;
    if (gain < 1e-10 * Math.max(1, current)) break;
  }
  return { type: 'platt', a, b };
}

/** Pool-adjacent-violators over the rows sorted by probability (equal probabilities pooled first). */
export function fitIsotonic(probs: Values, labels: Values, rows: Uint32Array): Calibrator {
  const order = Uint32Array.from(rows).sort((i, j) => probs[i] - probs[j]);
  // Blocks as parallel arrays: the lowest and highest probability in the block, its label sum and its row count.
  const xMin: number[] = [];
  const xMax: number[] = [];
  const sum: number[] = [];
  const count: number[] = [];
  for (const i of order) {
    const p = probs[i];
    const y = labels[i] > 0.5 ? 1 : 0;
    let top = xMin.length - 1;
    if (top >= 0 && xMax[top] === p) {
      sum[top] += y;
      count[top]++;
    } else {
      xMin.push(p);
      xMax.push(p);
      sum.push(y);
      count.push(1);
      top++;
    }
    // Merge while the block's mean is not above the previous block's: monotone non-decreasing in the end.
    while (top > 0 && sum[top] * count[top - 1] <= sum[top - 1] * count[top]) {
      xMax[top - 1] = xMax[top];
      sum[top - 1] += sum[top];
      count[top - 1] += count[top];
      xMin.pop();
      xMax.pop();
      sum.pop();
      count.pop();
      top--;
    }
  }
  const x: number[] = [];
  const y: number[] = [];
  for (let b = 0; b < xMin.length; b++) {
    const value = sum[b] / count[b];
    x.push(xMin[b]);
    y.push(value);
    if (xMax[b] > xMin[b]) {
      x.push(xMax[b]);
      y.push(value);
    }
  }
  return { type: 'isotonic', x, y };
}

/** Checks a stored calibration against the spec's tasks; what an artifact holds is not trusted blindly. */
export function checkCalibration(
  calibration: unknown,
  tasks: readonly { name: string; type: TaskTypeName }[],
): Calibration {
  if (!Array.isArray(calibration) || calibration.length !== tasks.length) {
    throw new Error(`calibration must hold one entry per task (${tasks.length})`);
  }
  return calibration.map((c: unknown, t) => {
    if (c === null) return null;
    const at = `calibration of task "${tasks[t].name}"`;
    if (!taskType(tasks[t]).calibrated) throw new Error(`${at}: only binary tasks are calibrated`);
    const entry = c as Partial<Record<string, unknown>>;
    if (entry.type === 'platt' && isPlattParameter(entry.a) && isPlattParameter(entry.b)) {
      return { type: 'platt', a: entry.a as number, b: entry.b as number };
    }
    if (entry.type === 'isotonic' && Array.isArray(entry.x) && Array.isArray(entry.y)) {
      const x = entry.x as number[];
      const y = entry.y as number[];
      const ok =
        x.length > 0 &&
        x.length === y.length &&
        x.every((v, i) => Number.isFinite(v) && (i === 0 || v > x[i - 1])) &&
        y.every((v, i) => v >= 0 && v <= 1 && (i === 0 || v >= y[i - 1]));
      if (ok) return { type: 'isotonic', x, y };
    }
    throw new Error(`${at} is neither a valid platt {a, b} nor an increasing isotonic {x, y}`);
  });
}

/**
 * A fitted Platt scaling's slope and intercept are a few units; past ±1e6 the serving graph's float32 product with a
 * logit overflows (infinity, and NaN against a logit of 0).
 */
const MAX_PLATT_PARAMETER = 1e6;

function isPlattParameter(value: unknown): boolean {
  return typeof value === 'number' && Math.abs(value) <= MAX_PLATT_PARAMETER;
}

function logit(p: number): number {
  const q = Math.min(Math.max(p, EPS), 1 - EPS);
  return Math.log(q / (1 - q));
}

function includedRows(n: number, mask: Uint8Array | undefined): Uint32Array {
  if (!mask) return Uint32Array.from({ length: n }, (_, i) => i);
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (mask[i] !== 0) rows.push(i);
  return Uint32Array.from(rows);
}
