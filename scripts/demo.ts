/**
 * `npm run demo [-- --exit] [-- --skip-build]`: the whole loop on this machine's Postgres and Redis, with no
 * configuration (or on the Redis Cluster of REDIS_CLUSTER_NODES, with its password and TLS settings). It builds the API and the worker, migrates a database of its own (`mmoe_demo`, on the Postgres of
 * DATABASE_URL, created if missing), empties it and the training queue (every run starts from the same data), starts
 * the API and a worker, writes a synthetic interaction log (users and items through the feature API, impressions
 * straight into Postgres), trains the first version through the queue, promotes it, and prints a scoring call and its
 * answer. The API and the worker then run until Ctrl-C (or stop at once with --exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import Bull from 'bull';
import { DataSource } from 'typeorm';

import { loadConfig, type AppConfig } from '@app/config';
import { EventRepository } from '@app/db';
import { generateInteractions, type InteractionData } from '@app/mmoe/synthetic/interactions.data';
import { QUEUE_PREFIX, TRAINING_QUEUE, type TrainingJobProgress, type TrainingJobResult } from '@app/queue';
import { RedisConnections } from '@app/redis';

import spec from '../examples/interactions.spec.json';

const REPO = join(__dirname, '..');
const DEMO_DATABASE = 'mmoe_demo';
const LOG_DIR = join(tmpdir(), 'mmoe-demo');
const DAY_MS = 86_400_000;
/** Two weeks of a small service: enough for the model to learn the tastes, small enough to train in a minute or two. */
const WORLD = { users: 2_000, items: 500, impressions: 60_000, days: 14, seed: 42 };
const EVENT_BATCH = 10_000;
const SAMPLE_USER = 'u-7';
const SAMPLE_CANDIDATES = Array.from({ length: 20 }, (_, k) => `i-${k * 25}`);

interface Job {
  id: string;
  state: string;
  progress: TrainingJobProgress | null;
  failedReason: string | null;
  result: TrainingJobResult | null;
}

const children: ChildProcess[] = [];

async function main(): Promise<void> {
  const { values: flags } = parseArgs({ options: { exit: { type: 'boolean' }, 'skip-build': { type: 'boolean' } } });
  const config = loadConfig();
  const databaseUrl = withDatabase(config.DATABASE_URL, DEMO_DATABASE);
  const api = `http://127.0.0.1:${config.API_PORT}`;
  // NO_COLOR: plain log files.
  const env = { ...process.env, DATABASE_URL: databaseUrl, NO_COLOR: '1' };
  const redis = config.REDIS_CLUSTER_NODES
    ? `Redis Cluster ${config.REDIS_CLUSTER_NODES.map(({ host, port }) => `${host}:${port}`).join(',')}`
    : `Redis ${redact(config.REDIS_URL)}`;
  say(`MMoE recommendation demo: Postgres ${redact(databaseUrl)}, ${redis}, API ${api}`);
  await ensurePortFree(config.API_PORT);

  if (!flags['skip-build']) {
    await step('building the API and the worker (nest build)', () =>
      Promise.all(
        ['api', 'worker'].map((app) =>
          run(process.execPath, [require.resolve('@nestjs/cli/bin/nest.js'), 'build', app], env),
        ),
      ),
    );
  }
  await step(`preparing database ${DEMO_DATABASE}`, async () => {
    await createDatabaseIfMissing(config.DATABASE_URL, DEMO_DATABASE);
    await run(process.execPath, ['dist/apps/api/apps/api/src/migrate'], env);
  });
  const dataSource = await new DataSource({ type: 'postgres', url: databaseUrl }).initialize();
  try {
    await step('resetting the demo data (its tables, the training queue)', () => reset(dataSource, config));

    await mkdir(LOG_DIR, { recursive: true });
    const backend = start('worker', 'dist/apps/worker/apps/worker/src/main', env, /tfjs backend: (.+)$/);
    start('api', 'dist/apps/api/apps/api/src/main', env);
    await step(`starting the API and a worker (logs in ${LOG_DIR})`, () => waitForHttp(`${api}/health/live`));

    const world = generate();
    await step(
      `writing ${fmt(world.users.length)} users, ${fmt(world.items.length)} items and ${fmt(world.events.length)} impressions over ${WORLD.days} days`,
      async () => {
        await call(api, config, 'PUT', '/v1/users/features', { entities: world.users });
        await call(api, config, 'PUT', '/v1/items/features', { entities: world.items });
        // Straight into Postgres: POST /v1/events checks labels against the production model's tasks, and there is none yet.
        await insertEvents(dataSource, world);
      },
    );
    say(`  click rate ${pct(rate(world, (l) => l.click))}, like rate ${pct(rate(world, (l) => l.like))}`);

    const from = world.events[0].occurredAt;
    const to = new Date(world.events[world.events.length - 1].occurredAt.getTime() + 1);
    const created = await call<{ id: string }>(api, config, 'POST', '/admin/training-jobs', {
      source: { kind: 'events', from, to },
      spec,
    });
    const backendName = await Promise.race([
      backend,
      new Promise<string>((resolve) => setTimeout(resolve, 60_000, 'not reported').unref()),
    ]);
    say(`training the first version through the queue: job ${created.id} (worker backend: ${backendName})`);
    const { result, examplesPerSec } = await follow(api, config, created.id);
    say(`  version ${result.versionId}: ${describeMetrics(result)}`);
    say(
      `  training time ${result.trainingSeconds.toFixed(1)} s on ${fmt(result.examples.train)} rows, ${fmt(Math.round(examplesPerSec))} examples/s`,
    );

    await step(`promoting version ${result.versionId} (canary at 100 %, then production)`, async () => {
      await call(api, config, 'POST', `/admin/models/${result.versionId}/canary`, { percent: 100 });
      await call(api, config, 'POST', '/admin/models/promote', { versionId: result.versionId });
      await waitForHttp(`${api}/health/ready`);
    });

    const request = { userId: SAMPLE_USER, itemIds: SAMPLE_CANDIDATES };
    const answer = await call<{ items: unknown[] }>(api, config, 'POST', '/v1/score', request);
    say('\na sample scoring call:\n');
    say(`curl -s ${api}/v1/score -H 'content-type: application/json' \\\n  -d '${JSON.stringify(request)}'\n`);
    say(
      `its answer (top 5 of ${answer.items.length}):\n${JSON.stringify({ ...answer, items: answer.items.slice(0, 5) }, null, 2)}\n`,
    );
    // With --exit the API stops next: its addresses would be dead links.
    if (!flags.exit) {
      say(`API docs      ${api}/docs`);
      say(
        `queue board   ${api}/admin/queues  (any user name; password: ${config.ADMIN_TOKEN === 'change-me' ? 'change-me, the development ADMIN_TOKEN' : 'your ADMIN_TOKEN'})`,
      );
      say(`metrics       ${api}/metrics`);
    }
    say(`logs          ${join(LOG_DIR, 'api.log')}, ${join(LOG_DIR, 'worker.log')}`);
  } finally {
    await dataSource.destroy();
  }

  if (flags.exit) return stopChildren();
  say('\nthe API and the worker keep running; Ctrl-C stops them');
  await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
  await stopChildren();
  say('stopped');
}

function generate(): InteractionData {
  return generateInteractions({ ...WORLD, start: new Date(Date.now() - WORLD.days * DAY_MS) });
}

async function reset(dataSource: DataSource, config: AppConfig): Promise<void> {
  await dataSource.query(
    'TRUNCATE events, user_features, item_features, rollout_events, model_versions RESTART IDENTITY CASCADE',
  );
  // Job ids restart with an empty queue; the versions that named the old ones are gone with the tables above. The
  // queue's connections are made as the apps make theirs: on REDIS_URL's Redis or on the cluster, with its password.
  const connections = new RedisConnections(config);
  const queue = new Bull(TRAINING_QUEUE, {
    prefix: QUEUE_PREFIX,
    createClient: (type) => connections.create(`demo-${type}`, type === 'client' ? 'bull-client' : 'bull-blocking'),
  });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
    await connections.onApplicationShutdown();
  }
}

async function insertEvents(dataSource: DataSource, world: InteractionData): Promise<void> {
  const events = new EventRepository(dataSource);
  for (let i = 0; i < world.events.length; i += EVENT_BATCH) {
    await events.insertNew(
      world.events
        .slice(i, i + EVENT_BATCH)
        .map((e) => ({ ...e, labels: { ...e.labels }, requestId: null, modelVersionId: null, context: null })),
    );
  }
}

/** Polls the job, printing each phase and epoch once, until it completes (or fails: then the demo stops). */
async function follow(
  api: string,
  config: AppConfig,
  id: string,
): Promise<{ result: TrainingJobResult; examplesPerSec: number }> {
  let shown = '';
  let examplesPerSec = 0;
  for (;;) {
    const job = await call<Job>(api, config, 'GET', `/admin/training-jobs/${id}`);
    if (job.state === 'completed' && job.result) return { result: job.result, examplesPerSec };
    if (job.state === 'failed') throw new Error(`training job ${id} failed: ${job.failedReason}`);
    const p = job.progress;
    if (p?.examplesPerSec) examplesPerSec = p.examplesPerSec;
    const stage = !p
      ? job.state
      : p.phase === 'training' && p.epoch !== undefined
        ? `training: epoch ${p.epoch}/${p.epochs}`
        : p.phase;
    if (stage !== shown) {
      shown = stage;
      const loss = p?.loss !== undefined ? `, loss ${p.loss.toFixed(4)}` : '';
      const eta = p?.etaSeconds !== undefined ? `, ETA ${Math.round(p.etaSeconds)} s` : '';
      say(`  ${stage}${loss}${eta}`);
    }
    await sleep(500);
  }
}

function describeMetrics({ candidate, decision, reason }: TrainingJobResult): string {
  const tasks = Object.entries(candidate).map(([task, m]) =>
    m.auc !== undefined ? `${task} AUC ${m.auc.toFixed(3)}` : `${task} RMSE ${m.rmse?.toFixed(3)}`,
  );
  return `${tasks.join(', ')} on the held-out last days; ${decision} (${reason})`;
}

/** A JSON call of the API; anything but 2xx stops the demo with the answer's message. */
async function call<T = unknown>(
  api: string,
  config: AppConfig,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${config.ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

/**
 * Starts a built app with its output in LOG_DIR/<name>.log; resolves with the first capture of `watch` in its output
 * (the worker's tfjs backend). An app that exits early stops the demo.
 */
function start(name: string, main: string, env: NodeJS.ProcessEnv, watch?: RegExp): Promise<string> {
  const child = spawn(process.execPath, [main], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const log = createWriteStream(join(LOG_DIR, `${name}.log`));
  child.stderr.pipe(log);
  child.on('exit', (code, signal) => {
    if (!stopping)
      fail(new Error(`the ${name} exited (${signal ?? `code ${code}`}); see ${join(LOG_DIR, `${name}.log`)}`));
  });
  return new Promise((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      log.write(`${line}\n`);
      const found = watch?.exec(line);
      if (found) resolve(found[1]);
    });
  });
}

let stopping = false;

async function stopChildren(): Promise<void> {
  stopping = true;
  await Promise.all(
    children
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM'))),
  );
}

function fail(error: Error): void {
  process.stderr.write(`\ndemo failed: ${error.message}\n`);
  void stopChildren().finally(() => process.exit(1));
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${[command, ...args].join(' ')} exited with code ${code}`)),
    );
  });
}

async function createDatabaseIfMissing(serverUrl: string, name: string): Promise<void> {
  const server = await new DataSource({ type: 'postgres', url: serverUrl }).initialize();
  try {
    const found: unknown[] = await server.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.length === 0) await server.query(`CREATE DATABASE ${name}`);
  } finally {
    await server.destroy();
  }
}

async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline)
      throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${status || 'no answer'})`);
    await sleep(250);
  }
}

function ensurePortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .once('error', () =>
        reject(new Error(`port ${port} is taken (an API already running?): stop it, or set API_PORT`)),
      )
      .listen(port, () => server.close(() => resolve()));
  });
}

async function step<T>(title: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  process.stdout.write(`${title} … `);
  const result = await work();
  say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** The same server and credentials, another database. */
function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

function rate(world: InteractionData, label: (labels: InteractionData['events'][number]['labels']) => number): number {
  return world.events.reduce((sum, e) => sum + label(e.labels), 0) / world.events.length;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

main().catch((error: Error) => fail(error));
