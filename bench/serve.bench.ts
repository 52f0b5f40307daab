/**
 * End-to-end speed of the scoring API against its engine: the built API is started as a child process on local
 * Postgres (database `bench`) and Redis (db 2), a reference-size MMoE is registered and promoted through the admin
 * API, 1 user and 1,000 items get features, and autocannon drives POST /v1/score with 10, 100 and 500 candidates,
 * GET /health/live (the HTTP ceiling of the same app) and 500 candidates at a fixed 100 req/s for the latency target.
 * In the same run, ONNX Runtime scores 500-row batches of the same model in this process: the raw engine rate.
 *
 *   npm run bench:serve [-- --quick] [-- --no-build]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { loadConfig } from '@app/config';
import { dataSourceOptions } from '@app/db';
import { createScorer, initBackend, MultiTaskModel, RawTable, Rng } from '@app/mmoe';

import { formatCount, formatMs, formatRatio, hasFlag, log, markdownTable, stopwatch } from './bench.util';
import { CATEGORICAL, NUMERIC, referenceSpec, VOCAB } from './reference-model';

const REPO = path.resolve(__dirname, '..');
const MAIN = path.join(REPO, 'dist/apps/api/apps/api/src/main.js');
const ITEMS = 1000;
const USER_ID = 'bench-user';
const CANDIDATES = [10, 100, 500] as const;
const CONNECTIONS = 10;
const FIXED_RATE = 100;
const RAW_BATCH = 500;
const TARGET_P99_MS = 15;
const TARGET_ENGINE_SHARE = 0.6;
/** Only the admin calls of this run use it; the child runs with NODE_ENV=production, which refuses the dev token. */
const ADMIN_TOKEN = `bench-${process.pid}`;

interface Plan {
  seconds: number;
  warmupRequests: number;
  rawSeconds: number;
}

interface Load {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

/** The user holds the first half of each kind of feature, items the second half, so a candidate row has all 24. */
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
  const spec = referenceSpec();
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

/** The `bench` database (created if missing), migrated and emptied, and an empty Redis db 2. */
async function prepareStores(databaseUrl: string, benchDatabaseUrl: string, redisUrl: string): Promise<void> {
  const server = new DataSource({ type: 'postgres', url: databaseUrl });
  await server.initialize();
  try {
    const found = (await server.query(`SELECT 1 FROM pg_database WHERE datname = 'bench'`)) as unknown[];
    if (found.length === 0) await server.query('CREATE DATABASE bench');
  } finally {
    await server.destroy();
  }
  const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: benchDatabaseUrl }));
  await dataSource.initialize();
  try {
    await dataSource.runMigrations();
    await dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features, events CASCADE');
  } finally {
    await dataSource.destroy();
  }
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  redis.disconnect();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function startApi(env: Record<string, string>): ChildProcess {
  // Nest's dependency injection needs the decorator metadata that tsc emits (tsx does not), hence the built API.
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  child.on('exit', (code, signal) => {
    if (code !== null && code !== 0) log(`api exited with code ${code}${signal ? ` (${signal})` : ''}`);
  });
  return child;
}

async function waitFor(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the api exited (code ${child.exitCode}) before ${url} answered 200`);
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s`);
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

async function load(url: string, plan: Plan, body?: unknown, overallRate?: number): Promise<Load> {
  const options = {
    url,
    connections: CONNECTIONS,
    ...(body === undefined
      ? { method: 'GET' as const }
      : { method: 'POST' as const, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  };
  await autocannon({ ...options, amount: plan.warmupRequests });
  const result = await autocannon({ ...options, duration: plan.seconds, overallRate });
  return {
    reqPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    failed: result.non2xx + result.errors + result.timeouts,
  };
}

async function main(): Promise<void> {
  const quick = hasFlag('quick');
  const plan: Plan = quick
    ? { seconds: 3, warmupRequests: 200, rawSeconds: 1 }
    : { seconds: 10, warmupRequests: 1000, rawSeconds: 5 };
  const config = loadConfig();
  const benchDatabaseUrl = Object.assign(new URL(config.DATABASE_URL), { pathname: '/bench' }).toString();
  const benchRedisUrl = Object.assign(new URL(config.REDIS_URL), { pathname: '/2' }).toString();

  if (!hasFlag('no-build')) {
    log('building the api (nest build api) …');
    if (spawnSync('npx', ['nest', 'build', 'api'], { cwd: REPO, stdio: 'inherit' }).status !== 0)
      throw new Error('nest build api failed');
  }
  await prepareStores(config.DATABASE_URL, benchDatabaseUrl, benchRedisUrl);

  const backend = await initBackend(config.MMOE_BACKEND);
  log(`training the reference model for a few steps (${backend.detail}) …`);
  const model = await trainReferenceModel();
  const scorer = await createScorer(model);
  log(`${formatCount(model.parameterCount())} parameters; the engine here is ${scorer.engine}`);

  const rng = new Rng(11);
  const user = userFeatures(rng);
  const items = Array.from({ length: ITEMS }, (_, i) => ({ id: `item-${i}`, features: itemFeatures(rng) }));

  // The raw engine: the scorer the API builds for a version (createScorer), on 500 encoded rows per call.
  const batch = model.encoder.encodeRecords(items.slice(0, RAW_BATCH).map((item) => ({ ...user, ...item.features })));
  for (let i = 0; i < 20; i++) await scorer.score(batch);
  const elapsed = stopwatch();
  let rawRows = 0;
  while (elapsed() < plan.rawSeconds) {
    await scorer.score(batch);
    rawRows += RAW_BATCH;
  }
  const rawRowsPerSec = rawRows / elapsed();
  log(`raw ${scorer.engine}: ${formatCount(rawRowsPerSec)} rows/s`);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = startApi({
    NODE_ENV: 'production',
    API_HOST: '127.0.0.1',
    API_PORT: String(port),
    DATABASE_URL: benchDatabaseUrl,
    REDIS_URL: benchRedisUrl,
    ADMIN_TOKEN,
    // Request logs would put a JSON line per request through a pipe on these two cores; errors still show.
    LOG_LEVEL: 'warn',
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

    const runs = new Map<number, Load>();
    for (const n of CANDIDATES) {
      const run = await load(`${base}/v1/score`, plan, {
        userId: USER_ID,
        itemIds: items.slice(0, n).map((item) => item.id),
      });
      runs.set(n, run);
      log(
        `${n} candidates: ${formatCount(run.reqPerSec)} req/s, p50 ${formatMs(run.p50Ms)} ms, p99 ${formatMs(run.p99Ms)} ms`,
      );
    }
    const ceiling = await load(`${base}/health/live`, plan);
    log(`GET /health/live: ${formatCount(ceiling.reqPerSec)} req/s`);
    const body500 = { userId: USER_ID, itemIds: items.slice(0, 500).map((item) => item.id) };
    const paced = await load(`${base}/v1/score`, plan, body500, FIXED_RATE);
    log(`500 candidates at ${FIXED_RATE} req/s: p99 ${formatMs(paced.p99Ms)} ms`);

    report({
      quick,
      plan,
      engine: scorer.engine,
      parameters: model.parameterCount(),
      rawRowsPerSec,
      runs,
      ceiling,
      paced,
    });
  } finally {
    child.kill('SIGTERM');
    await scorer.dispose();
    model.dispose();
  }
}

interface Report {
  quick: boolean;
  plan: Plan;
  engine: string;
  parameters: number;
  rawRowsPerSec: number;
  runs: Map<number, Load>;
  ceiling: Load;
  paced: Load;
}

function report({ quick, plan, engine, parameters, rawRowsPerSec, runs, ceiling, paced }: Report): void {
  const pct = (r: number) => `${formatRatio(r * 100)} %`;
  const metIf = (ok: boolean) => (ok ? 'met' : 'not met');
  const rows = [...runs].map(([n, run]) => [
    `POST /v1/score, ${n} candidates`,
    formatCount(run.reqPerSec),
    formatMs(run.p50Ms),
    formatMs(run.p99Ms),
    formatCount(run.reqPerSec * n),
    pct(run.reqPerSec / ceiling.reqPerSec),
    pct((run.reqPerSec * n) / rawRowsPerSec),
    formatCount(run.failed),
  ]);
  rows.push([
    'GET /health/live (HTTP ceiling)',
    formatCount(ceiling.reqPerSec),
    formatMs(ceiling.p50Ms),
    formatMs(ceiling.p99Ms),
    '–',
    '100 %',
    '–',
    formatCount(ceiling.failed),
  ]);
  rows.push([
    `POST /v1/score, 500 candidates at ${FIXED_RATE} req/s`,
    formatCount(paced.reqPerSec),
    formatMs(paced.p50Ms),
    formatMs(paced.p99Ms),
    formatCount(paced.reqPerSec * 500),
    '–',
    '–',
    formatCount(paced.failed),
  ]);
  const engineShare = (runs.get(500)!.reqPerSec * 500) / rawRowsPerSec;
  const failed = [...runs.values(), ceiling, paced].reduce((s, r) => s + r.failed, 0);
  console.log(
    [
      `## Serving: end to end vs the raw engine${quick ? ' (quick run)' : ''}`,
      '',
      markdownTable(
        ['load', 'req/s', 'p50 ms', 'p99 ms', 'candidates/s', 'req/s ÷ ceiling', 'candidates/s ÷ raw', 'failed'],
        rows,
      ),
      '',
      `Raw ${engine} on ${RAW_BATCH}-row batches in the bench process: **${formatCount(rawRowsPerSec)} rows/s**.`,
      '',
      markdownTable(
        ['target', 'measured', 'result'],
        [
          [
            `500 candidates p99 ≤ ${TARGET_P99_MS} ms at ${FIXED_RATE} req/s`,
            `${formatMs(paced.p99Ms)} ms`,
            metIf(paced.p99Ms <= TARGET_P99_MS && paced.failed === 0),
          ],
          [
            `end-to-end candidates/s ≥ ${pct(TARGET_ENGINE_SHARE)} of raw rows/s (500 candidates)`,
            pct(engineShare),
            metIf(engineShare >= TARGET_ENGINE_SHARE),
          ],
        ],
      ),
      '',
      `Reference MMoE (${formatCount(parameters)} parameters, 8 categorical + 16 numeric features, 8 experts [256, 128], towers [64], 2 tasks); ` +
        `1 user × 1,000 items in Postgres + Redis; autocannon with ${CONNECTIONS} connections for ${plan.seconds} s per row, in this process, ` +
        `on the same ${cpus().length} cores as the API (one Node process, LOG_LEVEL=warn). "failed" counts non-2xx answers and errors.`,
    ].join('\n'),
  );
  if (failed > 0) process.exitCode = 1;
}

main().catch((error: Error) => {
  log(`bench:serve failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
