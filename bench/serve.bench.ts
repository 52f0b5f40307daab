/**
 * End-to-end speed of the scoring API against its engine, and its behaviour beyond capacity, in one run. The built
 * API is started as a child process (its API_PROCESSES / INFERENCE_THREADS from --processes / --threads, else the
 * config defaults) on local Postgres and Redis; a reference-size MMoE is registered and promoted through the admin API,
 * its int8 graph checked on a holdout (as the worker does) so that it is served in the precision a trained version
 * would be; 1 user and 1,000 items get features. Then, on the same cores:
 *   - one request alone: 500 candidates, each call sent when the previous answer arrived (p50, p99);
 *   - open loop: 500 candidates offered at 50, 100 and 150 req/s, with Poisson arrivals (exponential gaps, as
 *     independent users send them) and uniform ones, latency counted from each request's scheduled start (so a stalled
 *     server cannot hide its queue: no coordinated omission), sent by a lean child process (open-loop.generator.ts)
 *     that reports how late it sent them;
 *   - closed loop: the maximum rate for 10, 100, 500 and 1,000 candidates, and GET /health/live (the app's bare
 *     HTTP ceiling); the 500-candidate rate is the capacity the overload row is offered 2.5× of;
 *   - overload: 500 candidates, Poisson at 2.5× that capacity: what is answered and when (on time = within the
 *     request's deadline, SCORE_DEADLINE_MS), what is refused (503) or dropped (504) and how fast;
 *   - the other precision (fp32 when int8 is served): one request alone and Poisson at 100 req/s again;
 *   - the raw engine: ONNX Runtime on the same graph, 500-row batches, one session per core on worker threads;
 *   - the API's own per-stage timings (scoring_stage_duration_seconds) over the Poisson 100 req/s run;
 *   - the load generator's own CPU use, since it shares the cores with the API, and the machine's load average.
 *
 * With --logging, only the cost of logging served predictions instead: p99 at 50 req/s with the prediction log
 * off, at its default 10 % sample and at 100 % (as a canary's requests are), one API start each.
 *
 *   npm run bench:serve [-- --quick] [-- --no-build] [-- --processes N] [-- --threads N]
 *                       [-- --database bench] [-- --redis-db 2] [-- --logging] [-- --api-cpu-prof DIR]
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import autocannon from 'autocannon';
import { DataSource } from 'typeorm';

import { loadConfig } from '@app/config';
import { dataSourceOptions } from '@app/db';
import {
  assembleRequest,
  checkInt8,
  encodeSlice,
  exportOnnx,
  InferencePool,
  initBackend,
  MultiTaskModel,
  OnnxScorer,
  RawTable,
  requestSides,
  Rng,
  type GraphPrecision,
  type Int8Check,
} from '@app/mmoe';

import { freePort } from '../test/fixtures/free-port';
import { benchStores, buildApi, prepareStores, startApi, waitFor } from './bench.stores';
import {
  cpuModel,
  flagValue,
  formatCount,
  formatMs,
  formatRatio,
  hasFlag,
  log,
  markdownTable,
  quantile,
  stopwatch,
} from './bench.util';
import { HiccupMeter, type Hiccups } from './hiccup.meter';
import { runGenerator, type GeneratorTrace } from './open-loop.generator';
import { CATEGORICAL, NUMERIC, referenceSpec, VOCAB } from './reference-model';

const ITEMS = 1000;
const USER_ID = 'bench-user';
const CLOSED_LOOP_CANDIDATES = [10, 100, 500, 1000] as const;
const OPEN_LOOP_RATES = [50, 100, 150] as const;
const ARRIVALS = ['poisson', 'uniform'] as const;
type Arrivals = (typeof ARRIVALS)[number];
const OPEN_LOOP_CANDIDATES = 500;
/** Calls of the one-request-alone row, each sent when the previous answer has arrived. */
const ALONE_CALLS = 300;
/** How long the machine's stalls are measured at rest, before the rows. */
const IDLE_MS = 5000;
/** The overload row offers this multiple of the measured 500-candidate capacity (the closed-loop rate). */
const OVERLOAD_FACTOR = 2.5;
const CONNECTIONS = 10;
const RAW_BATCH = 500;
const STAGES = ['validation', 'features', 'assembly', 'inference', 'ranking', 'serialisation'] as const;
const TARGETS = {
  p99Ms: 15,
  aloneP99OverP50: 1.5,
  /** Beyond its deadline, at most this many ms for an answer under overload ("its deadline plus a few ms"). */
  overloadLateMs: 10,
  /** Under overload, at least this share of the capacity still answered on time. */
  overloadOnTimeShare: 0.8,
  closedLoop500: 150,
  ceilingShare10: 0.4,
  rawShare: 0.8,
};
/**
 * Only the admin calls of this run use it; the child runs with NODE_ENV=production, which refuses the dev token and
 * any token shorter than 32 characters.
 */
const ADMIN_TOKEN = `bench-${randomBytes(16).toString('hex')}`;

interface Plan {
  seconds: number;
  warmupRequests: number;
  rawSeconds: number;
}

interface Load {
  /** Answered (200) per second of the run. */
  reqPerSec: number;
  /** Over the answered requests, from each one's scheduled start. */
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** 503 (refused at admission) and 504 (dropped at the deadline) answers, and the slowest of them. */
  refused: number;
  expired: number;
  slowestRefusalMs: number;
  /** Anything else: other statuses, connection errors. */
  failed: number;
  /** Answered within `onTimeMs` of the scheduled start (the deadline), per second. */
  onTimePerSec: number;
  /** Cores' worth of CPU the load generator used during the run. */
  generatorCores: number;
  /** How late the open-loop generator sent its requests (send − scheduled start), p99 and max; NaN for closed loops. */
  lateP99Ms: number;
  lateMaxMs: number;
  /** The machine's own stalls during the run (HiccupMeter), when measured. */
  stalls?: Hiccups;
}

/**
 * The user holds the first half of each kind of feature (user-side in the spec: fed to the network once per request),
 * items the second half, so a candidate row has all 24.
 */
function userFeatures(rng: Rng): Record<string, string | number> {
  const features: Record<string, string | number> = {};
  for (let j = 0; j < CATEGORICAL / 2; j++) features[`c${j}`] = `v${rng.int(VOCAB)}`;
  for (let j = 0; j < NUMERIC / 2; j++) features[`n${j}`] = rng.gaussian();
  return features;
}

function itemFeatures(rng: Rng): Record<string, string | number> {
  const features: Record<string, string | number> = {};
  for (let j = CATEGORICAL / 2; j < CATEGORICAL; j++) features[`c${j}`] = `v${rng.int(VOCAB)}`;
  for (let j = NUMERIC / 2; j < NUMERIC; j++) features[`n${j}`] = rng.gaussian();
  return features;
}

/**
 * A labelled row: the click and like rates depend on a few user and item features, so that the model learns
 * something and the int8 check below compares two rankings of a real signal.
 */
function labelledRow(rng: Rng): Record<string, string | number> {
  const row: Record<string, string | number> = { ...userFeatures(rng), ...itemFeatures(rng) };
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const value = (name: string) => row[name] as number;
  const click = sigmoid(1.2 * value('n0') - 0.8 * value('n9') + (row.c5 < `v${VOCAB / 2}` ? 0.7 : -0.7));
  const like = sigmoid(0.8 * value('n1') + 0.6 * value('n10') - 0.5);
  return { ...row, click: rng.next() < click ? 1 : 0, like: rng.next() < like ? 1 : 0 };
}

/**
 * The reference model after one epoch (every category value seen once at least), and its int8 graph judged against
 * fp32 on held-out rows, as the worker judges a trained version.
 */
async function trainReferenceModel(): Promise<{ model: MultiTaskModel; int8?: Int8Check }> {
  const spec = referenceSpec({ userSide: true });
  const rng = new Rng(7);
  const table = new RawTable(spec);
  for (let i = 0; i < 4096; i++) {
    const record = labelledRow(rng);
    if (i < VOCAB) for (let j = 0; j < CATEGORICAL; j++) record[`c${j}`] = `v${i}`;
    table.add(record);
  }
  const { model } = await MultiTaskModel.train(spec, table);
  const holdout = new RawTable(spec);
  for (let i = 0; i < 4096; i++) holdout.add(labelledRow(rng));
  const { preprocessing } = model.network;
  return {
    model,
    int8: await checkInt8({ spec, preprocessing, weights: model.network.snapshot() }, model.encode(holdout)),
  };
}

async function call<T>(base: string, method: string, url: string, body: unknown): Promise<T> {
  const response = await fetch(`${base}${url}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** CPU of this process during fn, in cores (1 = one core fully busy). */
async function measuringCpu<T>(fn: () => Promise<T>): Promise<{ value: T; cores: number }> {
  const cpu = process.cpuUsage();
  const elapsed = stopwatch();
  const value = await fn();
  const used = process.cpuUsage(cpu);
  return { value, cores: (used.user + used.system) / 1e6 / elapsed() };
}

/** Closed loop: CONNECTIONS connections, each sending its next request when the previous answer arrives. */
async function closedLoop(url: string, plan: Plan, body?: unknown): Promise<Load> {
  const options = {
    url,
    connections: CONNECTIONS,
    ...(body === undefined
      ? { method: 'GET' as const }
      : { method: 'POST' as const, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  };
  await autocannon({ ...options, amount: plan.warmupRequests });
  const { value: result, cores } = await measuringCpu(() => autocannon({ ...options, duration: plan.seconds }));
  const count = (status: number) => result.statusCodeStats[status]?.count ?? 0;
  const [refused, expired] = [count(503), count(504)];
  // autocannon keeps one latency histogram for every answer: with refusals among them it says nothing of the
  // answered requests, so it is left out.
  const answeredOnly = refused + expired === 0;
  const latency = (ms: number) => (answeredOnly ? ms : NaN);
  return {
    reqPerSec: result['2xx'] / result.duration,
    p50Ms: latency(result.latency.p50),
    p99Ms: latency(result.latency.p99),
    p999Ms: latency(result.latency.p99_9),
    maxMs: latency(result.latency.max),
    refused,
    expired,
    slowestRefusalMs: NaN,
    failed: result.non2xx - refused - expired + result.errors + result.timeouts,
    onTimePerSec: NaN,
    generatorCores: cores,
    lateP99Ms: NaN,
    lateMaxMs: NaN,
  };
}

/** The start of each of `total` requests, in ms from the first: exponential gaps of mean 1000 / rate, or even ones. */
function schedule(arrivals: Arrivals, rate: number, total: number): Float64Array {
  const rng = new Rng(rate);
  const starts = new Float64Array(total);
  for (let i = 1; i < total; i++)
    starts[i] = starts[i - 1] + (arrivals === 'poisson' ? -Math.log(1 - rng.next()) : 1) * (1000 / rate);
  return starts;
}

/** A generator's trace as a Load: latencies by status, and how late the generator itself sent. */
function loadOf(trace: GeneratorTrace, onTimeMs: number): Load {
  const answered: number[] = [];
  const refused: number[] = [];
  let failed = 0;
  for (let i = 0; i < trace.status.length; i++) {
    const status = trace.status[i];
    if (status === 200) answered.push(trace.latencyMs[i]);
    else if (status === 503 || status === 504) refused.push(trace.latencyMs[i]);
    else failed++;
  }
  const q = (p: number) => (answered.length > 0 ? quantile(answered, p) : NaN);
  const late = Array.from(trace.latenessMs);
  return {
    reqPerSec: answered.length / trace.seconds,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    p999Ms: q(0.999),
    maxMs: answered.length > 0 ? Math.max(...answered) : NaN,
    refused: trace.status.filter((status) => status === 503).length,
    expired: trace.status.filter((status) => status === 504).length,
    slowestRefusalMs: Math.max(0, ...refused),
    failed,
    onTimePerSec: answered.filter((ms) => ms <= onTimeMs).length / trace.seconds,
    generatorCores: trace.cores,
    lateP99Ms: quantile(late, 0.99),
    lateMaxMs: Math.max(...late),
  };
}

/**
 * Open loop: request i starts at its scheduled time whatever happened to the previous ones (over as many keep-alive
 * connections as it takes), sent by a child process of its own (open-loop.generator.ts); its latency runs from that
 * scheduled start to the end of its answer.
 */
async function openLoop(
  url: string,
  o: { rate: number; seconds: number; body: unknown; arrivals: Arrivals; onTimeMs: number },
): Promise<Load> {
  const startsMs = Array.from(schedule(o.arrivals, o.rate, Math.round(o.rate * o.seconds)));
  return loadOf(await runGenerator({ kind: 'open', url, body: JSON.stringify(o.body), startsMs }), o.onTimeMs);
}

/** One request at a time: each call is sent when the previous answer has arrived (from the same child process). */
async function alone(url: string, body: unknown, calls: number): Promise<Load> {
  return loadOf(await runGenerator({ kind: 'alone', url, body: JSON.stringify(body), calls }), Infinity);
}

/** CPU ms a process's threads have used, by kind; Linux only (/proc), undefined elsewhere. */
interface ThreadCpu {
  eventLoop: number;
  /** The inference threads: the ones at niceness 10 (inference.worker.ts lowers their priority). */
  inference: number;
  /** Everything else: V8's garbage collection and compiler helpers, libuv's pool. */
  other: number;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

function threadCpu(pid: number): ThreadCpu | undefined {
  const cpu: ThreadCpu = { eventLoop: 0, inference: 0, other: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // After the command name: state, …, utime (12th), stime (13th), …, nice (17th).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
      cpu[Number(tid) === pid ? 'eventLoop' : Number(fields[16]) > 0 ? 'inference' : 'other'] += ms;
    }
  } catch {
    return undefined;
  }
  return cpu;
}

/** The API's garbage collections so far (nodejs_gc_duration_seconds), by kind: count and seconds. */
async function gcTotals(base: string): Promise<Map<string, { count: number; seconds: number }>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const totals = new Map<string, { count: number; seconds: number }>();
  for (const [, suffix, kind, value] of text.matchAll(
    /^nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} (\S+)$/gm,
  )) {
    const t = totals.get(kind) ?? { count: 0, seconds: 0 };
    if (suffix === 'count') t.count = Number(value);
    else t.seconds = Number(value);
    totals.set(kind, t);
  }
  return totals;
}

/** What one request cost the API process, over the one-request-alone row: CPU by thread kind, garbage collection. */
interface RequestCosts {
  cpuMs?: ThreadCpu;
  /** Per 1,000 requests: scavenges (minor GCs) and the others; GC pause ms per request. */
  minorPerThousand: number;
  otherGcPerThousand: number;
  gcMsPerRequest: number;
}

async function requestCosts<T>(
  base: string,
  pid: number | undefined,
  requests: number,
  fn: () => Promise<T>,
): Promise<{ value: T; costs: RequestCosts }> {
  const [cpuBefore, gcBefore] = [pid === undefined ? undefined : threadCpu(pid), await gcTotals(base)];
  const value = await fn();
  const [cpuAfter, gcAfter] = [pid === undefined ? undefined : threadCpu(pid), await gcTotals(base)];
  const gc = (kind: string) => {
    const [a, b] = [gcAfter.get(kind), gcBefore.get(kind)];
    return { count: (a?.count ?? 0) - (b?.count ?? 0), seconds: (a?.seconds ?? 0) - (b?.seconds ?? 0) };
  };
  const kinds = [...gcAfter.keys()];
  const per = (n: number) => n / requests;
  return {
    value,
    costs: {
      cpuMs:
        cpuBefore && cpuAfter
          ? {
              eventLoop: per(cpuAfter.eventLoop - cpuBefore.eventLoop),
              inference: per(cpuAfter.inference - cpuBefore.inference),
              other: per(cpuAfter.other - cpuBefore.other),
            }
          : undefined,
      minorPerThousand: per(gc('minor').count) * 1000,
      otherGcPerThousand: per(kinds.filter((k) => k !== 'minor').reduce((n, k) => n + gc(k).count, 0)) * 1000,
      gcMsPerRequest: per(kinds.reduce((s, k) => s + gc(k).seconds, 0) * 1000),
    },
  };
}

/**
 * ONNX Runtime alone on the graph the API serves (the request layout: the user's features once, 500 items per run):
 * one session per core on worker threads, two batches in flight each.
 */
async function rawEngine(
  model: MultiTaskModel,
  user: Record<string, unknown>,
  items: Record<string, unknown>[],
  seconds: number,
  precision: GraphPrecision = 'fp32',
): Promise<number> {
  const threads = availableParallelism();
  const pool = new InferencePool(threads);
  try {
    const { spec, preprocessing } = model.network;
    const graph = exportOnnx({ spec, preprocessing, weights: model.network.snapshot() }, 'request', precision);
    const scorer = await pool.load(graph, spec, preprocessing, 'request');
    const slice = (record: Record<string, unknown>) => encodeSlice(model.encoder, record).slice;
    const batch = assembleRequest(requestSides(spec, preprocessing), slice(user), items.map(slice));
    const elapsed = stopwatch();
    let scored = 0;
    const worker = async () => {
      while (elapsed() < seconds) {
        await scorer.scoreRequest(batch);
        scored += batch.size;
      }
    };
    for (let i = 0; i < 10; i++) await scorer.scoreRequest(batch);
    elapsed();
    const started = stopwatch();
    await Promise.all(Array.from({ length: threads * 2 }, worker));
    const rowsPerSec = scored / started();
    await scorer.dispose();
    return rowsPerSec;
  } finally {
    await pool.close();
  }
}

/** Passes of the engine-alone rows, and the idle ms between two (about a 500-candidate request's other stages). */
const ENGINE_ALONE_PASSES = 1000;
const ENGINE_ALONE_GAP_MS = 3;

interface Spread {
  p50Ms: number;
  p99Ms: number;
}

/**
 * The engine's own jitter, the floor under a request alone's p99 / p50: one 500-row pass of the served graph at a time,
 * ENGINE_ALONE_GAP_MS apart as requests alone are, on the calling thread and through an inference thread (the hop the
 * API makes). On an idle virtual CPU a pass after a gap runs colder than back to back, and a sleeping thread wakes late.
 */
async function engineAlone(
  model: MultiTaskModel,
  user: Record<string, unknown>,
  items: Record<string, unknown>[],
  precision: GraphPrecision,
): Promise<{ inline: Spread; pooled: Spread }> {
  const { spec, preprocessing } = model.network;
  const graph = exportOnnx({ spec, preprocessing, weights: model.network.snapshot() }, 'request', precision);
  const slice = (record: Record<string, unknown>) => encodeSlice(model.encoder, record).slice;
  const batch = assembleRequest(requestSides(spec, preprocessing), slice(user), items.map(slice));
  const spread = async (pass: () => Promise<unknown>): Promise<Spread> => {
    for (let i = 0; i < 10; i++) await pass();
    const ms: number[] = [];
    for (let i = 0; i < ENGINE_ALONE_PASSES; i++) {
      await new Promise((resolve) => setTimeout(resolve, ENGINE_ALONE_GAP_MS));
      const started = performance.now();
      await pass();
      ms.push(performance.now() - started);
    }
    return { p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99) };
  };
  const inline = await OnnxScorer.create(graph, spec, preprocessing, { layout: 'request' });
  const pool = new InferencePool(1);
  try {
    const pooled = await pool.load(graph, spec, preprocessing, 'request');
    return {
      inline: await spread(() => inline.scoreRequest(batch)),
      pooled: await spread(() => pooled.scoreRequest(batch)),
    };
  } finally {
    await inline.dispose();
    await pool.close();
  }
}

type StageTotals = Map<string, { sum: number; count: number }>;

/**
 * The stage histograms' sums and counts, added over the API's processes: scraped over fresh connections until each
 * process (told apart by the `process` label a clustered API puts on its series) has answered once.
 */
async function stageTotals(base: string, processes: number): Promise<StageTotals> {
  const seen = new Map<string, string>();
  for (let attempt = 0; attempt < processes * 8 && seen.size < processes; attempt++) {
    const text = await (await fetch(`${base}/metrics`, { headers: { connection: 'close' } })).text();
    seen.set(/process="(\d+)"/.exec(text)?.[1] ?? 'single', text);
  }
  const totals: StageTotals = new Map();
  for (const text of seen.values()) {
    for (const stage of STAGES) {
      // Validation happens before the scoring service, in the route's validation pipe.
      const series =
        stage === 'validation'
          ? { name: 'validation_duration_seconds', label: 'dto="ScoreRequestDto"' }
          : { name: 'scoring_stage_duration_seconds', label: `stage="${stage}"` };
      const read = (suffix: string) =>
        Number(
          new RegExp(`^${series.name}_${suffix}\\{[^}]*${series.label}[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0,
        );
      const t = totals.get(stage) ?? { sum: 0, count: 0 };
      totals.set(stage, { sum: t.sum + read('sum'), count: t.count + read('count') });
    }
  }
  return totals;
}

/** Mean milliseconds per request of each stage between two scrapes. */
function stageMeans(before: StageTotals, after: StageTotals): Map<string, number> {
  return new Map(
    STAGES.map((stage) => {
      const a = after.get(stage)!;
      const b = before.get(stage)!;
      const count = a.count - b.count;
      return [stage, count > 0 ? ((a.sum - b.sum) * 1000) / count : NaN];
    }),
  );
}

/** The built API in production mode on `env`'s stores, serving `model` with the user's and items' features. */
async function serveModel(
  model: MultiTaskModel,
  user: Record<string, string | number>,
  items: { id: string; features: Record<string, string | number> }[],
  env: Record<string, string>,
): Promise<{ base: string; child: ChildProcess; versionId: number }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = startApi({
    NODE_ENV: 'production',
    API_HOST: '127.0.0.1',
    API_PORT: String(port),
    ADMIN_TOKEN,
    // Request logs would put a JSON line per request through a pipe on these two cores; errors still show.
    LOG_LEVEL: 'warn',
    // Every request comes from one address, and a closed loop that is refused (fast 503s) sends thousands a second:
    // the per-client abuse limit (60,000 a minute) would answer 429 to the rows after it.
    RATE_LIMIT_PER_MINUTE: '100000000',
    ...env,
  });
  try {
    await waitFor(`${base}/health/live`, child, 60_000);
    const version = await call<{ id: number }>(base, 'POST', '/admin/models', {
      artifact: Buffer.from(model.toArtifact()).toString('base64'),
      objectiveWeights: { click: 1, like: 0.5 },
    });
    await call(base, 'POST', `/admin/models/${version.id}/canary`, { percent: 0 });
    await call(base, 'POST', '/admin/models/promote', { versionId: version.id });
    await call(base, 'PUT', `/v1/users/${USER_ID}/features`, { features: user });
    await call(base, 'PUT', '/v1/items/features', { entities: items });
    await waitFor(`${base}/health/ready`, child, 30_000);
    log(`api ready on ${base} with version ${version.id} in production`);
    return { base, child, versionId: version.id };
  } catch (e) {
    child.kill('SIGTERM');
    throw e;
  }
}

/**
 * Records the bench's int8 check on the version, as the worker records its own after training (an uploaded artifact
 * carries none): the version may then be served in int8 if the check passed.
 */
async function recordInt8Check(benchDatabaseUrl: string, versionId: number, check: Int8Check): Promise<void> {
  const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: benchDatabaseUrl }));
  await dataSource.initialize();
  try {
    await dataSource.query(`UPDATE model_versions SET metrics = metrics || $1::jsonb WHERE id = $2`, [
      JSON.stringify({ int8: check }),
      versionId,
    ]);
  } finally {
    await dataSource.destroy();
  }
}

/** Switches the version's serving precision and waits until the API serves it (served_model_version's label). */
async function servePrecision(base: string, versionId: number, precision: GraphPrecision): Promise<void> {
  await call(base, 'POST', `/admin/models/${versionId}/precision`, { precision });
  const series = `served_model_version{role="production",version="${versionId}",precision="${precision}"} 1`;
  for (let waited = 0; !(await (await fetch(`${base}/metrics`)).text()).includes(series); waited += 100) {
    if (waited > 60_000) throw new Error(`the api did not serve version ${versionId} in ${precision} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  log(`serving version ${versionId} in ${precision}`);
}

/** Prediction-log samples compared by `--logging`: off, the default 10 %, and every request (as for a canary). */
const LOG_SAMPLES = [0, 0.1, 1] as const;
/** Below saturation on the 2 shared cores of the development machine, so that p99 measures cost, not a queue. */
const LOG_RATE = 50;

/**
 * `--logging`: what logging served predictions costs a score. One API per sample rate, each on emptied stores,
 * 500 candidates offered at LOG_RATE req/s (open loop) after the same warm-up; the rows written and dropped come from the
 * API's own prediction_log_rows_total.
 */
async function loggingOverhead(o: {
  plan: Plan;
  model: MultiTaskModel;
  user: Record<string, string | number>;
  items: { id: string; features: Record<string, string | number> }[];
  env: Record<string, string>;
  /** Empties the bench stores. */
  reset: () => Promise<void>;
}): Promise<void> {
  const body = { userId: USER_ID, itemIds: o.items.slice(0, OPEN_LOOP_CANDIDATES).map((item) => item.id) };
  const runs: { sample: number; load: Load; written: number; dropped: number }[] = [];
  for (const sample of LOG_SAMPLES) {
    await o.reset();
    const { base, child } = await serveModel(o.model, o.user, o.items, {
      ...o.env,
      PREDICTION_LOG_SAMPLE: String(sample),
    });
    try {
      await autocannon({
        url: `${base}/v1/score`,
        method: 'POST',
        connections: CONNECTIONS,
        amount: o.plan.warmupRequests,
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      const before = await logRows(base);
      const load = await openLoop(`${base}/v1/score`, {
        rate: LOG_RATE,
        seconds: o.plan.seconds,
        body,
        arrivals: 'uniform',
        onTimeMs: Infinity,
      });
      // The last batch is written within PREDICTION_LOG_FLUSH_MS of the last request.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const after = await logRows(base);
      runs.push({ sample, load, written: after.written - before.written, dropped: after.dropped - before.dropped });
      log(`prediction log sample ${sample}: p99 ${formatMs(load.p99Ms)} ms`);
    } finally {
      child.kill('SIGTERM');
    }
  }
  const off = runs[0].load;
  console.log(
    [
      `## Serving: the cost of logging served predictions${o.plan.seconds < 15 ? ' (quick run)' : ''}`,
      '',
      `CPU: ${cpuModel()}, ${cpus().length} cores shared by the API and the load generator. 500 candidates offered at ` +
        `${LOG_RATE} req/s (open loop) for ${o.plan.seconds} s per row; one row logged = one (request, item, version).`,
      '',
      markdownTable(
        ['PREDICTION_LOG_SAMPLE', 'p50 ms', 'p99 ms', 'p99 vs off', 'rows written', 'rows dropped', 'failed'],
        runs.map(({ sample, load, written, dropped }) => [
          String(sample),
          formatMs(load.p50Ms),
          formatMs(load.p99Ms),
          `${formatRatio(load.p99Ms / off.p99Ms)}×`,
          formatCount(written),
          formatCount(dropped),
          formatCount(load.failed + load.refused + load.expired),
        ]),
      ),
    ].join('\n'),
  );
}

/** The API's prediction_log_rows_total, written and dropped (one process: --logging runs with the default). */
async function logRows(base: string): Promise<{ written: number; dropped: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (outcome: string) =>
    Number(new RegExp(`^prediction_log_rows_total\\{outcome="${outcome}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { written: read('written'), dropped: read('dropped') };
}

async function main(): Promise<void> {
  const quick = hasFlag('quick');
  const plan: Plan = quick
    ? { seconds: 4, warmupRequests: 200, rawSeconds: 2 }
    : { seconds: 15, warmupRequests: 1000, rawSeconds: 5 };
  const config = loadConfig();
  const { database, databaseUrl: benchDatabaseUrl, redisUrl: benchRedisUrl } = benchStores(config);
  const apiEnv: Record<string, string> = {};
  if (flagValue('processes')) apiEnv.API_PROCESSES = flagValue('processes')!;
  if (flagValue('threads')) apiEnv.INFERENCE_THREADS = flagValue('threads')!;
  const apiConfig = loadConfig({ ...process.env, ...apiEnv });

  if (!hasFlag('no-build')) buildApi();
  await prepareStores(config.DATABASE_URL, benchDatabaseUrl, database, benchRedisUrl);

  const loadAtStart = loadavg();
  const backend = await initBackend(config.MMOE_BACKEND);
  log(`training the reference model for one epoch (${backend.detail}) …`);
  const { model, int8 } = await trainReferenceModel();

  const rng = new Rng(11);
  const user = userFeatures(rng);
  const items = Array.from({ length: ITEMS }, (_, i) => ({ id: `item-${i}`, features: itemFeatures(rng) }));

  if (hasFlag('logging')) {
    try {
      await loggingOverhead({
        plan,
        model,
        user,
        items,
        env: { ...apiEnv, DATABASE_URL: benchDatabaseUrl, REDIS_URL: benchRedisUrl },
        reset: () => prepareStores(config.DATABASE_URL, benchDatabaseUrl, database, benchRedisUrl),
      });
    } finally {
      model.dispose();
    }
    return;
  }

  const rawItems = items.slice(0, RAW_BATCH).map((item) => item.features);
  const rawRowsPerSec = await rawEngine(model, user, rawItems, plan.rawSeconds);
  log(`raw ONNX Runtime on ${availableParallelism()} threads: ${formatCount(rawRowsPerSec)} rows/s`);
  const rawInt8RowsPerSec = await rawEngine(model, user, rawItems, plan.rawSeconds, 'int8');
  log(`raw ONNX Runtime, int8 graph: ${formatCount(rawInt8RowsPerSec)} rows/s`);
  // The precision a trained version would be served in (INT8_SERVING=auto): int8 when its holdout check passed.
  const served: GraphPrecision = apiConfig.INT8_SERVING === 'auto' && int8?.eligible ? 'int8' : 'fp32';
  const engine = await engineAlone(model, user, rawItems, served);
  log(
    `the engine alone, one pass every ${ENGINE_ALONE_GAP_MS} ms: p99 / p50 ` +
      `${formatRatio(engine.inline.p99Ms / engine.inline.p50Ms)}× inline, ` +
      `${formatRatio(engine.pooled.p99Ms / engine.pooled.p50Ms)}× through an inference thread`,
  );

  const { base, child, versionId } = await serveModel(model, user, items, {
    DATABASE_URL: benchDatabaseUrl,
    REDIS_URL: benchRedisUrl,
    ...apiEnv,
  });
  const meter = new HiccupMeter();
  try {
    if (int8) await recordInt8Check(benchDatabaseUrl, versionId, int8);
    if (served === 'int8') await servePrecision(base, versionId, 'int8');
    const url = `${base}/v1/score`;
    const body = (n: number) => ({ userId: USER_ID, itemIds: items.slice(0, n).map((item) => item.id) });
    const scored = body(OPEN_LOOP_CANDIDATES);
    const onTimeMs = apiConfig.SCORE_DEADLINE_MS;
    const warmUp = () =>
      // Every process warms up (model loaded, item rows cached) before anything is measured.
      autocannon({
        url,
        method: 'POST',
        connections: CONNECTIONS,
        amount: plan.warmupRequests,
        body: JSON.stringify(body(ITEMS)),
        headers: { 'content-type': 'application/json' },
      });
    await warmUp();

    // The machine at rest first: what it adds to a thread's wake-ups with no load at all.
    const { hiccups: idleStalls } = await meter.during(() => new Promise((resolve) => setTimeout(resolve, IDLE_MS)));
    const withStalls = async (run: () => Promise<Load>): Promise<Load> => {
      const { value, hiccups } = await meter.during(run);
      return { ...value, stalls: hiccups };
    };
    // The process's own threads, when it is one process (a cluster's workers are its children).
    const pid = apiConfig.API_PROCESSES === 1 ? child.pid : undefined;
    const { value: single, costs } = await requestCosts(base, pid, ALONE_CALLS, () =>
      withStalls(() => alone(url, scored, ALONE_CALLS)),
    );
    log(`one request alone: p50 ${formatMs(single.p50Ms)} ms, p99 ${formatMs(single.p99Ms)} ms`);
    const open = new Map<string, Load>();
    let stages = new Map<string, number>();
    for (const arrivals of ARRIVALS) {
      for (const rate of OPEN_LOOP_RATES) {
        const before = await stageTotals(base, apiConfig.API_PROCESSES);
        const run = await withStalls(() =>
          openLoop(url, { rate, seconds: plan.seconds, body: scored, arrivals, onTimeMs }),
        );
        if (rate === 100 && arrivals === 'poisson')
          stages = stageMeans(before, await stageTotals(base, apiConfig.API_PROCESSES));
        open.set(`${arrivals} ${rate}`, run);
        log(
          `500 candidates, ${arrivals} ${rate} req/s: p99 ${formatMs(run.p99Ms)} ms, ${formatCount(run.reqPerSec)} req/s`,
        );
      }
    }
    const closed = new Map<number, Load>();
    for (const n of CLOSED_LOOP_CANDIDATES) {
      const run = await withStalls(() => closedLoop(url, plan, body(n)));
      closed.set(n, run);
      log(`${n} candidates, closed loop: ${formatCount(run.reqPerSec)} req/s, p99 ${formatMs(run.p99Ms)} ms`);
    }
    const ceiling = await closedLoop(`${base}/health/live`, plan);
    log(`GET /health/live: ${formatCount(ceiling.reqPerSec)} req/s`);

    const capacity = closed.get(OPEN_LOOP_CANDIDATES)!.reqPerSec;
    const overloadRate = Math.round(OVERLOAD_FACTOR * capacity);
    const overload = await withStalls(() =>
      openLoop(url, { rate: overloadRate, seconds: plan.seconds, body: scored, arrivals: 'poisson', onTimeMs }),
    );
    log(
      `overload, ${overloadRate} req/s offered: ${formatCount(overload.onTimePerSec)} req/s on time, ` +
        `${formatCount(overload.refused)} refused, slowest answer ${formatMs(overload.maxMs)} ms`,
    );

    // The same request alone and at 100 req/s in the other precision, when it is allowed (its check passed).
    const other: GraphPrecision = served === 'int8' ? 'fp32' : 'int8';
    let otherPrecision: { alone: Load; poisson100: Load } | undefined;
    if (served === 'int8' || int8?.eligible) {
      await servePrecision(base, versionId, other);
      await warmUp();
      otherPrecision = {
        alone: await alone(url, scored, ALONE_CALLS),
        poisson100: await openLoop(url, {
          rate: 100,
          seconds: plan.seconds,
          body: scored,
          arrivals: 'poisson',
          onTimeMs,
        }),
      };
      log(`${other}: p99 at 100 req/s ${formatMs(otherPrecision.poisson100.p99Ms)} ms`);
    }

    report({
      quick,
      plan,
      apiConfig,
      parameters: model.parameterCount(),
      rawRowsPerSec,
      rawInt8RowsPerSec,
      engine,
      int8,
      served,
      single,
      costs,
      open,
      closed,
      ceiling,
      capacity,
      overloadRate,
      overload,
      otherPrecision: otherPrecision && { precision: other, ...otherPrecision },
      stages,
      idleStalls,
      loadAverages: [loadAtStart, loadavg()],
    });
  } finally {
    child.kill('SIGTERM');
    model.dispose();
    await meter.close();
  }
}

interface Report {
  quick: boolean;
  plan: Plan;
  apiConfig: { API_PROCESSES: number; INFERENCE_THREADS: number; SCORE_DEADLINE_MS: number };
  parameters: number;
  rawRowsPerSec: number;
  rawInt8RowsPerSec: number;
  engine: { inline: Spread; pooled: Spread };
  int8?: Int8Check;
  served: GraphPrecision;
  single: Load;
  costs: RequestCosts;
  open: Map<string, Load>;
  closed: Map<number, Load>;
  ceiling: Load;
  capacity: number;
  overloadRate: number;
  overload: Load;
  otherPrecision?: { precision: GraphPrecision; alone: Load; poisson100: Load };
  stages: Map<string, number>;
  /** The machine's stalls over IDLE_MS with no load. */
  idleStalls: Hiccups;
  /** os.loadavg() when the run started and when it ended. */
  loadAverages: [number[], number[]];
}

function report(r: Report): void {
  const { apiConfig, open, closed, ceiling, overload, single, stages } = r;
  const pct = (x: number) => `${formatRatio(x * 100)} %`;
  const metIf = (ok: boolean) => (ok ? 'met' : '**not met**');
  const ms = (x: number) => (Number.isFinite(x) ? formatMs(x) : '–');
  const deadline = apiConfig.SCORE_DEADLINE_MS;
  const late = (run: Load) => (Number.isFinite(run.lateP99Ms) ? `${ms(run.lateP99Ms)} / ${ms(run.lateMaxMs)}` : '–');
  const stalled = ({ stalls }: Load) => (stalls ? `${ms(stalls.p999Ms)} / ${ms(stalls.maxMs)}` : '–');
  const loadRow = (name: string, run: Load, candidates?: number) => [
    name,
    formatCount(run.reqPerSec),
    ms(run.p50Ms),
    ms(run.p99Ms),
    ms(run.p999Ms),
    ms(run.maxMs),
    candidates ? formatCount(run.reqPerSec * candidates) : '–',
    `${formatCount(run.refused)} / ${formatCount(run.expired)}`,
    formatCount(run.failed),
    formatRatio(run.generatorCores),
    late(run),
    stalled(run),
  ];
  const rows = [
    loadRow(`500 candidates, one request alone (${ALONE_CALLS} calls)`, single, 500),
    ...ARRIVALS.flatMap((arrivals) =>
      OPEN_LOOP_RATES.map((rate) =>
        loadRow(`500 candidates, ${arrivals} arrivals at ${rate} req/s`, open.get(`${arrivals} ${rate}`)!, 500),
      ),
    ),
    ...[...closed].map(([n, run]) => loadRow(`${n} candidates, closed loop`, run, n)),
    loadRow('GET /health/live, closed loop (HTTP ceiling)', ceiling),
  ];
  const poisson100 = open.get('poisson 100')!;
  const closed500 = closed.get(500)!;
  const ceilingShare = closed.get(10)!.reqPerSec / ceiling.reqPerSec;
  const rawShare = (closed500.reqPerSec * 500) / (r.served === 'int8' ? r.rawInt8RowsPerSec : r.rawRowsPerSec);
  const stageTotal = [...stages.values()].filter(Number.isFinite).reduce((sum, v) => sum + v, 0);
  const offered = overload.reqPerSec + (overload.refused + overload.expired + overload.failed) / r.plan.seconds;
  const unscored = (run: Load) => run.refused + run.expired + run.failed;
  const [start, end] = r.loadAverages.map((l) => l.map((x) => x.toFixed(2)).join(' '));
  const check = r.int8
    ? `int8 check on 4,096 held-out rows: AUC ${Object.entries(r.int8.auc)
        .map(([task, { fp32, int8 }]) => `${task} ${fp32.toFixed(4)} → ${int8.toFixed(4)}`)
        .join(', ')}, largest drop ${r.int8.maxAucDrop.toFixed(4)} (tolerance ${r.int8.tolerance}): ` +
      (r.int8.eligible ? 'eligible' : 'not eligible')
    : 'no int8 check (no binary task with both classes held out)';
  const other = r.otherPrecision;
  console.log(
    [
      `## Serving: end to end, beyond capacity, and against the raw engine${r.quick ? ' (quick run)' : ''}`,
      '',
      `CPU: ${cpuModel()}, ${cpus().length} cores shared by the API and the load generator; load average ` +
        `(1, 5, 15 min) ${start} at the start, ${end} at the end: latencies are only the API's on an otherwise idle ` +
        `machine. API: API_PROCESSES=${apiConfig.API_PROCESSES}, INFERENCE_THREADS=${apiConfig.INFERENCE_THREADS}, ` +
        `SCORE_DEADLINE_MS=${deadline}, LOG_LEVEL=warn; the version served in **${r.served}** (${check}). ` +
        'Model: half its categorical and numeric features user-side (the request graph takes them once per request).',
      '',
      markdownTable(
        [
          'load',
          'answered req/s',
          'p50 ms',
          'p99 ms',
          'p99.9 ms',
          'slowest ms',
          'candidates/s',
          'refused 503 / dropped 504',
          'failed',
          'load generator CPU (cores)',
          'sent late p99 / max ms',
          'machine stalls p99.9 / max ms',
        ],
        rows,
      ),
      '',
      'Machine stalls: how late a thread of the bench process, doing nothing else, woke from 1 ms sleeps during the ' +
        'row (after jHiccup): the wait for a core (the service and the load generator hold them) and the ' +
        `machine's own pauses. With no load at all, over ${IDLE_MS / 1000} s before the rows: p99.9 ` +
        `${ms(r.idleStalls.p999Ms)} ms, max ${ms(r.idleStalls.maxMs)} ms, what this machine adds to any wake-up.`,
      '',
      `**Overload**: 500 candidates, Poisson arrivals at ${formatCount(r.overloadRate)} req/s, ${OVERLOAD_FACTOR}× the ` +
        `closed-loop capacity measured above (${formatCount(r.capacity)} req/s), for ${r.plan.seconds} s:`,
      '',
      markdownTable(
        [
          'offered req/s',
          'answered req/s',
          `on time (≤ ${deadline} ms) req/s`,
          'p50 / p99 ms',
          'slowest answer ms',
          'refused 503',
          'dropped 504',
          'slowest refusal ms',
          'failed',
          'load generator CPU (cores)',
          'sent late p99 / max ms',
          'machine stalls p99.9 / max ms',
        ],
        [
          [
            formatCount(offered),
            formatCount(overload.reqPerSec),
            formatCount(overload.onTimePerSec),
            `${ms(overload.p50Ms)} / ${ms(overload.p99Ms)}`,
            ms(overload.maxMs),
            formatCount(overload.refused),
            formatCount(overload.expired),
            ms(overload.slowestRefusalMs),
            formatCount(overload.failed),
            formatRatio(overload.generatorCores),
            late(overload),
            stalled(overload),
          ],
        ],
      ),
      '',
      ...(other
        ? [
            `The same version in ${other.precision} (switched through the admin API, same process):`,
            '',
            markdownTable(
              ['precision', 'alone p50 ms', 'alone p99 ms', 'Poisson 100 req/s p50 ms', 'p99 ms', 'p99.9 ms'],
              [
                [
                  r.served,
                  ms(single.p50Ms),
                  ms(single.p99Ms),
                  ms(poisson100.p50Ms),
                  ms(poisson100.p99Ms),
                  ms(poisson100.p999Ms),
                ],
                [
                  other.precision,
                  ms(other.alone.p50Ms),
                  ms(other.alone.p99Ms),
                  ms(other.poisson100.p50Ms),
                  ms(other.poisson100.p99Ms),
                  ms(other.poisson100.p999Ms),
                ],
              ],
            ),
            '',
          ]
        : []),
      `Raw ONNX Runtime, same graph (request layout), ${RAW_BATCH}-candidate requests, ${availableParallelism()} worker threads: ` +
        `fp32 **${formatCount(r.rawRowsPerSec)} rows/s**, int8 **${formatCount(r.rawInt8RowsPerSec)} rows/s** ` +
        `(${formatRatio(r.rawInt8RowsPerSec / r.rawRowsPerSec)}×); end to end at 500 candidates (closed loop) is ` +
        `${pct(rawShare)} of the served precision's.`,
      '',
      `The engine alone, one ${RAW_BATCH}-row pass (${r.served}) every ${ENGINE_ALONE_GAP_MS} ms, ` +
        `${formatCount(ENGINE_ALONE_PASSES)} passes: on the calling thread p50 / p99 ${ms(r.engine.inline.p50Ms)} / ` +
        `${ms(r.engine.inline.p99Ms)} ms (${formatRatio(r.engine.inline.p99Ms / r.engine.inline.p50Ms)}×), through an ` +
        `inference thread ${ms(r.engine.pooled.p50Ms)} / ${ms(r.engine.pooled.p99Ms)} ms ` +
        `(${formatRatio(r.engine.pooled.p99Ms / r.engine.pooled.p50Ms)}×): the floor under the one-request-alone ratio.`,
      '',
      `What one 500-candidate request cost the API process over the one-request-alone row (CPU from /proc per thread, ` +
        `GC from nodejs_gc_duration_seconds): ` +
        (r.costs.cpuMs
          ? `event loop ${ms(r.costs.cpuMs.eventLoop)} ms of CPU, inference threads ${ms(r.costs.cpuMs.inference)} ms, ` +
            `other threads (V8's GC and compiler helpers, libuv) ${ms(r.costs.cpuMs.other)} ms; `
          : '(per-thread CPU: Linux and API_PROCESSES=1 only) ') +
        `${formatRatio(r.costs.minorPerThousand)} scavenges and ${formatRatio(r.costs.otherGcPerThousand)} other ` +
        `collections per 1,000 requests, ${ms(r.costs.gcMsPerRequest)} ms of GC pause per request.`,
      '',
      "Where a 500-candidate request's time goes at 100 req/s, Poisson (the API's own scoring_stage_duration_seconds, mean ms per request):",
      '',
      markdownTable(
        [...STAGES, 'sum'],
        [[...STAGES.map((stage) => ms(stages.get(stage) ?? NaN)), formatMs(stageTotal)]],
      ),
      '',
      markdownTable(
        ['target', 'measured', 'result'],
        [
          [
            `500 candidates, Poisson 100 req/s: p99 ≤ ${TARGETS.p99Ms} ms, none refused or failed`,
            `${ms(poisson100.p99Ms)} ms, ${unscored(poisson100)} not answered`,
            metIf(poisson100.p99Ms <= TARGETS.p99Ms && unscored(poisson100) === 0),
          ],
          [
            `one request alone: p99 ≤ ${TARGETS.aloneP99OverP50}× p50`,
            `${formatRatio(single.p99Ms / single.p50Ms)}× (${ms(single.p50Ms)} / ${ms(single.p99Ms)} ms; the engine ` +
              `alone ${formatRatio(r.engine.pooled.p99Ms / r.engine.pooled.p50Ms)}× through a thread)`,
            metIf(single.p99Ms <= TARGETS.aloneP99OverP50 * single.p50Ms),
          ],
          [
            `${OVERLOAD_FACTOR}× capacity: no answer later than the deadline + ${TARGETS.overloadLateMs} ms`,
            `slowest ${ms(overload.maxMs)} ms (deadline ${deadline} ms)`,
            metIf(overload.maxMs <= deadline + TARGETS.overloadLateMs),
          ],
          [
            `${OVERLOAD_FACTOR}× capacity: ≥ ${pct(TARGETS.overloadOnTimeShare)} of capacity answered on time, the rest refused`,
            `${pct(overload.onTimePerSec / r.capacity)}, ${formatCount(overload.refused + overload.expired)} refused, ${overload.failed} failed`,
            metIf(overload.onTimePerSec >= TARGETS.overloadOnTimeShare * r.capacity && overload.failed === 0),
          ],
          [
            `500 candidates closed loop ≥ ${TARGETS.closedLoop500} req/s`,
            `${formatCount(closed500.reqPerSec)} req/s`,
            metIf(closed500.reqPerSec >= TARGETS.closedLoop500),
          ],
          [
            `10 candidates ≥ ${pct(TARGETS.ceilingShare10)} of the HTTP ceiling`,
            pct(ceilingShare),
            metIf(ceilingShare >= TARGETS.ceilingShare10),
          ],
          [
            `end-to-end candidates/s ≥ ${pct(TARGETS.rawShare)} of raw ORT rows/s`,
            pct(rawShare),
            metIf(rawShare >= TARGETS.rawShare),
          ],
        ],
      ),
      '',
      `Reference MMoE (${formatCount(r.parameters)} parameters, 8 categorical + 16 numeric features — 4 categorical and 8 numeric of them user-side, fed once per request —, ` +
        `8 experts [256, 128], towers [64], 2 tasks); ` +
        `1 user × 1,000 items in Postgres + Redis; ${r.plan.seconds} s per row; closed loops by autocannon with ${CONNECTIONS} connections; ` +
        "latencies of the open-loop and overload rows from each request's scheduled start, their requests sent by a " +
        'child process of their own (a bare keep-alive HTTP/1.1 client), which says how late it sent them ' +
        '("sent late", included in the latencies); "failed" counts other statuses and errors.',
    ].join('\n'),
  );
  // Below capacity every request must be answered; closed loops saturate and the overload row is beyond capacity, so
  // they may refuse, but nothing may fail.
  const runs = [single, ...open.values(), ...closed.values(), ceiling, overload];
  if ([single, ...open.values()].some((run) => unscored(run) > 0) || runs.some((run) => run.failed > 0))
    process.exitCode = 1;
}

main().catch((error: Error) => {
  log(`bench:serve failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
