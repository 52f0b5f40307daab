/**
 * End-to-end speed of the scoring API against its engine, in one run. The built API is started as a child process
 * (its API_PROCESSES / INFERENCE_THREADS from --processes / --threads, else the config defaults) on local Postgres
 * and Redis; a reference-size MMoE is registered and promoted through the admin API; 1 user and 1,000 items get
 * features. Then, on the same cores:
 *   - open loop: 500 candidates offered at a fixed 50, 100 and 150 req/s, latency counted from each request's
 *     scheduled start (so a stalled server cannot hide its queue: no coordinated omission);
 *   - closed loop: the maximum rate for 10, 100, 500 and 1,000 candidates, and GET /health/live (the app's bare
 *     HTTP ceiling);
 *   - the raw engine: ONNX Runtime on the same graph, 500-row batches, one session per core on worker threads;
 *   - the API's own per-stage timings (scoring_stage_duration_seconds) over the 100 req/s run;
 *   - the load generator's own CPU use, since it shares the cores with the API.
 *
 * With --logging, only the cost of logging served predictions instead: p99 at 50 req/s with the prediction log
 * off, at its default 10 % sample and at 100 % (as a canary's requests are), one API start each.
 *
 *   npm run bench:serve [-- --quick] [-- --no-build] [-- --processes N] [-- --threads N]
 *                       [-- --database bench] [-- --redis-db 2] [-- --logging]
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { availableParallelism, cpus } from 'node:os';
import autocannon from 'autocannon';

import { loadConfig } from '@app/config';
import {
  assembleRequest,
  encodeSlice,
  exportOnnx,
  InferencePool,
  initBackend,
  MultiTaskModel,
  RawTable,
  requestSides,
  Rng,
  type GraphPrecision,
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
import { CATEGORICAL, NUMERIC, referenceSpec, VOCAB } from './reference-model';

const ITEMS = 1000;
const USER_ID = 'bench-user';
const CLOSED_LOOP_CANDIDATES = [10, 100, 500, 1000] as const;
const OPEN_LOOP_RATES = [50, 100, 150] as const;
const OPEN_LOOP_CANDIDATES = 500;
const CONNECTIONS = 10;
const RAW_BATCH = 500;
const STAGES = ['validation', 'features', 'assembly', 'inference', 'ranking', 'serialisation'] as const;
const TARGETS = { p99Ms: 15, closedLoop500: 150, ceilingShare10: 0.4, rawShare: 0.8 };
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
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  failed: number;
  /** Cores' worth of CPU the load generator (this process) used during the run. */
  generatorCores: number;
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

/** Weights only need to exist: one epoch over a few batches of random rows (every category value seen once at least). */
async function trainReferenceModel(): Promise<MultiTaskModel> {
  const spec = referenceSpec({ userSide: true });
  const rng = new Rng(7);
  const table = new RawTable(spec);
  for (let i = 0; i < 2048; i++) {
    const record: Record<string, string | number> = {
      ...userFeatures(rng),
      ...itemFeatures(rng),
      click: rng.int(2),
      like: rng.int(2),
    };
    if (i < VOCAB) for (let j = 0; j < CATEGORICAL; j++) record[`c${j}`] = `v${i}`;
    table.add(record);
  }
  return (await MultiTaskModel.train(spec, table)).model;
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
  return {
    reqPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    p999Ms: result.latency.p99_9,
    failed: result.non2xx + result.errors + result.timeouts,
    generatorCores: cores,
  };
}

/**
 * Open loop: request i starts at i / rate seconds whatever happened to the previous ones (over as many keep-alive
 * connections as it takes); its latency runs from that scheduled start to the end of its answer.
 */
async function openLoop(url: string, rate: number, seconds: number, body: unknown): Promise<Load> {
  const payload = Buffer.from(JSON.stringify(body));
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const target = new URL(url);
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let failed = 0;
  let sent = 0;
  const send = (scheduled: number) =>
    new Promise<void>((resolve) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - scheduled);
            else failed++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end(payload);
    });
  const { value: elapsed, cores } = await measuringCpu(async () => {
    const inFlight: Promise<void>[] = [];
    const start = performance.now();
    while (sent < total) {
      const now = performance.now();
      while (sent < total && start + (sent * 1000) / rate <= now) inFlight.push(send(start + (sent++ * 1000) / rate));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(inFlight);
    return (performance.now() - start) / 1000;
  });
  agent.destroy();
  return {
    reqPerSec: latencies.length / elapsed,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    p999Ms: quantile(latencies, 0.999),
    failed,
    generatorCores: cores,
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
): Promise<{ base: string; child: ChildProcess }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = startApi({
    NODE_ENV: 'production',
    API_HOST: '127.0.0.1',
    API_PORT: String(port),
    ADMIN_TOKEN,
    // Request logs would put a JSON line per request through a pipe on these two cores; errors still show.
    LOG_LEVEL: 'warn',
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
    return { base, child };
  } catch (e) {
    child.kill('SIGTERM');
    throw e;
  }
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
      const load = await openLoop(`${base}/v1/score`, LOG_RATE, o.plan.seconds, body);
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
          formatCount(load.failed),
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

  const backend = await initBackend(config.MMOE_BACKEND);
  log(`training the reference model for a few steps (${backend.detail}) …`);
  const model = await trainReferenceModel();

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

  const { base, child } = await serveModel(model, user, items, {
    DATABASE_URL: benchDatabaseUrl,
    REDIS_URL: benchRedisUrl,
    ...apiEnv,
  });
  try {
    const body = (n: number) => ({ userId: USER_ID, itemIds: items.slice(0, n).map((item) => item.id) });

    // Every process warms up (model loaded, item rows cached) before anything is measured.
    await autocannon({
      url: `${base}/v1/score`,
      method: 'POST',
      connections: CONNECTIONS,
      amount: plan.warmupRequests,
      body: JSON.stringify(body(ITEMS)),
      headers: { 'content-type': 'application/json' },
    });

    const open = new Map<number, Load>();
    let stages = new Map<string, number>();
    for (const rate of OPEN_LOOP_RATES) {
      const before = await stageTotals(base, apiConfig.API_PROCESSES);
      const run = await openLoop(`${base}/v1/score`, rate, plan.seconds, body(OPEN_LOOP_CANDIDATES));
      if (rate === 100) stages = stageMeans(before, await stageTotals(base, apiConfig.API_PROCESSES));
      open.set(rate, run);
      log(
        `500 candidates offered at ${rate} req/s: p99 ${formatMs(run.p99Ms)} ms, ${formatCount(run.reqPerSec)} req/s`,
      );
    }
    const closed = new Map<number, Load>();
    for (const n of CLOSED_LOOP_CANDIDATES) {
      const run = await closedLoop(`${base}/v1/score`, plan, body(n));
      closed.set(n, run);
      log(`${n} candidates, closed loop: ${formatCount(run.reqPerSec)} req/s, p99 ${formatMs(run.p99Ms)} ms`);
    }
    const ceiling = await closedLoop(`${base}/health/live`, plan);
    log(`GET /health/live: ${formatCount(ceiling.reqPerSec)} req/s`);

    report({
      quick,
      plan,
      apiConfig,
      parameters: model.parameterCount(),
      rawRowsPerSec,
      rawInt8RowsPerSec,
      open,
      closed,
      ceiling,
      stages,
    });
  } finally {
    child.kill('SIGTERM');
    model.dispose();
  }
}

interface Report {
  quick: boolean;
  plan: Plan;
  apiConfig: { API_PROCESSES: number; INFERENCE_THREADS: number };
  parameters: number;
  rawRowsPerSec: number;
  rawInt8RowsPerSec: number;
  open: Map<number, Load>;
  closed: Map<number, Load>;
  ceiling: Load;
  stages: Map<string, number>;
}

function report({
  quick,
  plan,
  apiConfig,
  parameters,
  rawRowsPerSec,
  rawInt8RowsPerSec,
  open,
  closed,
  ceiling,
  stages,
}: Report): void {
  const pct = (r: number) => `${formatRatio(r * 100)} %`;
  const metIf = (ok: boolean) => (ok ? 'met' : '**not met**');
  const loadRow = (name: string, run: Load, candidates?: number) => [
    name,
    formatCount(run.reqPerSec),
    formatMs(run.p50Ms),
    formatMs(run.p99Ms),
    formatMs(run.p999Ms),
    candidates ? formatCount(run.reqPerSec * candidates) : '–',
    formatCount(run.failed),
    formatRatio(run.generatorCores),
  ];
  const rows = [
    ...[...open].map(([rate, run]) => loadRow(`500 candidates offered at ${rate} req/s (open loop)`, run, 500)),
    ...[...closed].map(([n, run]) => loadRow(`${n} candidates, closed loop`, run, n)),
    loadRow('GET /health/live, closed loop (HTTP ceiling)', ceiling),
  ];
  const paced = open.get(100)!;
  const closed500 = closed.get(500)!;
  const ceilingShare = closed.get(10)!.reqPerSec / ceiling.reqPerSec;
  const rawShare = (closed500.reqPerSec * 500) / rawRowsPerSec;
  const stageTotal = [...stages.values()].filter(Number.isFinite).reduce((s, v) => s + v, 0);
  const all = [...open.values(), ...closed.values(), ceiling];
  console.log(
    [
      `## Serving: end to end vs the raw engine${quick ? ' (quick run)' : ''}`,
      '',
      `CPU: ${cpuModel()}, ${cpus().length} cores shared by the API and the load generator. ` +
        `API: API_PROCESSES=${apiConfig.API_PROCESSES}, INFERENCE_THREADS=${apiConfig.INFERENCE_THREADS}, LOG_LEVEL=warn. ` +
        'Model: half its categorical and numeric features user-side (the request graph takes them once per request).',
      '',
      markdownTable(
        ['load', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'candidates/s', 'failed', 'load generator CPU (cores)'],
        rows,
      ),
      '',
      `Raw ONNX Runtime, same graph (request layout), ${RAW_BATCH}-candidate requests, ${availableParallelism()} worker threads: **${formatCount(rawRowsPerSec)} rows/s**; ` +
        `end to end at 500 candidates (closed loop) is ${pct(rawShare)} of it. ` +
        `The same graph in int8 (dynamically quantised dense layers, opt-in per version): ` +
        `**${formatCount(rawInt8RowsPerSec)} rows/s**, ${formatRatio(rawInt8RowsPerSec / rawRowsPerSec)}× fp32.`,
      '',
      `Where a 500-candidate request's time goes at 100 req/s (the API's own scoring_stage_duration_seconds, mean ms per request):`,
      '',
      markdownTable(
        [...STAGES, 'sum'],
        [
          [
            ...STAGES.map((s) => (Number.isFinite(stages.get(s)) ? formatMs(stages.get(s)!) : '–')),
            formatMs(stageTotal),
          ],
        ],
      ),
      '',
      markdownTable(
        ['target', 'measured', 'result'],
        [
          [
            `500 candidates at 100 req/s: p99 ≤ ${TARGETS.p99Ms} ms, 0 failed`,
            `${formatMs(paced.p99Ms)} ms, ${paced.failed} failed`,
            metIf(paced.p99Ms <= TARGETS.p99Ms && paced.failed === 0),
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
      `Reference MMoE (${formatCount(parameters)} parameters, 8 categorical + 16 numeric features — 4 categorical and 8 numeric of them user-side, fed once per request —, ` +
        `8 experts [256, 128], towers [64], 2 tasks); ` +
        `1 user × 1,000 items in Postgres + Redis; ${plan.seconds} s per row; closed loops by autocannon with ${CONNECTIONS} connections; ` +
        `"failed" counts non-2xx answers and errors.`,
    ].join('\n'),
  );
  if (all.some((r) => r.failed > 0)) process.exitCode = 1;
}

main().catch((error: Error) => {
  log(`bench:serve failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
