import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Helpers shared by the benchmarks: flags, timing, statistics and markdown output. */

/** Whether a bare flag such as `--quick` was given. */
export function hasFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** The value after `--name`, if given. */
export function flagValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `--name N` as a positive integer, `fallback` when absent; anything else is an error naming the flag. */
export function positiveIntFlag(name: string): number | undefined;
export function positiveIntFlag(name: string, fallback: number): number;
export function positiveIntFlag(name: string, fallback?: number): number | undefined {
  const value = flagValue(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got "${value}")`);
  return n;
}

/** `--name X` as a number that `valid` accepts (`range` says which, in the error), `fallback` when absent. */
export function numberFlag(name: string, fallback: number, valid: (n: number) => boolean, range: string): number {
  const value = flagValue(name);
  if (value === undefined) return fallback;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || !valid(n)) throw new Error(`--${name} must be a number ${range} (got "${value}")`);
  return n;
}

/** Progress goes to stderr, so that stdout carries only the result (a JSON line for child processes). */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Seconds since the call, each time the returned function is called. */
export function stopwatch(): () => number {
  const start = performance.now();
  return () => (performance.now() - start) / 1000;
}

/** Linear interpolation between closest ranks (numpy's default), so medians and p90s compare with the PyTorch script's. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function meanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const ss = values.reduce((s, v) => s + (v - mean) ** 2, 0);
  return { mean, std: values.length > 1 ? Math.sqrt(ss / (values.length - 1)) : 0 };
}

export interface Timing {
  medianMs: number;
  p90Ms: number;
  runs: number;
}

export interface TimingPlan {
  warmup: number;
  runs: number;
  /** Stop early once this much time has been spent (but never before `minRuns`), so a slow engine stays bounded. */
  budgetMs?: number;
  minRuns?: number;
}

/** Wall time of `fn` over repeated runs after warm-up runs (first calls compile kernels and allocate buffers). */
export function timeRuns(fn: () => void, plan: TimingPlan): Timing {
  for (let i = 0; i < plan.warmup; i++) fn();
  const times: number[] = [];
  const started = performance.now();
  const minRuns = plan.minRuns ?? plan.runs;
  while (times.length < plan.runs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    if (plan.budgetMs !== undefined && times.length >= minRuns && performance.now() - started > plan.budgetMs) break;
  }
  return { medianMs: quantile(times, 0.5), p90Ms: quantile(times, 0.9), runs: times.length };
}

export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Whole numbers with thousands separators (e.g. 21,800). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Two significant figures below 100 (0.29, 6.8, 61), whole numbers above (2,423), as in the reference tables. */
export function formatMs(ms: number): string {
  return ms >= 100 ? formatCount(ms) : formatRatio(ms);
}

/** A ratio such as 0.18 or 5.6. */
export function formatRatio(r: number): string {
  return Number(r.toPrecision(2)).toString();
}

/** lscpu's "Model name" (printed beside every table: absolute timings only compare on one CPU). */
export function cpuModel(): string {
  const lscpu = spawnSync('lscpu', { encoding: 'utf8' }).stdout ?? '';
  return /^Model name:\s*(.+)$/m.exec(lscpu)?.[1].trim() ?? cpus()[0]?.model ?? 'unknown CPU';
}

/**
 * CPU ms a process of this machine has used (utime + stime from /proc, in 10 ms ticks): what a loaded machine does
 * not blur as it does wall time. A Postgres backend's too, the server running here.
 */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Standard error of the mean: sample std / √n (0 for a single value). */
export function standardError(values: number[]): number {
  return meanStd(values).std / Math.sqrt(values.length);
}

/** a[i] − b[i] for results paired by index (same data and seed), whose shared part cancels out. */
export function pairedDifferences(a: number[], b: number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length: ${a.length} vs ${b.length}`);
  return a.map((v, i) => v - b[i]);
}

/** Two-sided 95 % critical values of Student's t for 1 … 30 degrees of freedom (the normal's 1.96 beyond). */
const T_975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/**
 * A paired t-test at 5 % (two-sided) on per-seed differences a − b of a metric: `better` or `worse` for a, by the
 * metric's direction, when the mean difference is beyond t(n − 1) standard errors of 0; else `no difference`.
 */
export function pairedVerdict(differences: number[], higherIsBetter: boolean): 'better' | 'worse' | 'no difference' {
  const n = differences.length;
  if (n < 2) return 'no difference';
  const { mean } = meanStd(differences);
  const se = standardError(differences);
  const critical = T_975[n - 2] ?? 1.96;
  if (!(Math.abs(mean) > critical * se)) return 'no difference';
  return mean > 0 === higherIsBetter ? 'better' : 'worse';
}

/** Pearson correlation of two equally long samples. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`samples differ in length: ${a.length} vs ${b.length}`);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= a.length;
  mb /= b.length;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
