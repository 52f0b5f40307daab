/** The stores and the built API process that the HTTP benches share. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import type { AppConfig } from '@app/config';
import { dataSourceOptions } from '@app/db';

import { flagValue, log } from './bench.util';

export const REPO = path.resolve(__dirname, '..');
const MAIN = path.join(REPO, 'dist/apps/api/apps/api/src/main.js');
/** As the Dockerfile and `npm run start:api` start the API (a fixed young generation, no memory reducer: docs/serving.md). */
const API_NODE_FLAGS = ['--max-semi-space-size=64', '--min-semi-space-size=64', '--no-memory-reducer'];

/** The bench database (`--database`, default `bench`) and Redis db (`--redis-db`, default 2) on the configured servers. */
export function benchStores(config: Pick<AppConfig, 'DATABASE_URL' | 'REDIS_URL'>): {
  database: string;
  databaseUrl: string;
  redisUrl: string;
} {
  const database = flagValue('database') ?? 'bench';
  return {
    database,
    databaseUrl: Object.assign(new URL(config.DATABASE_URL), { pathname: `/${database}` }).toString(),
    redisUrl: Object.assign(new URL(config.REDIS_URL), { pathname: `/${flagValue('redis-db') ?? '2'}` }).toString(),
  };
}

/** `nest build api` (the benches run the built API: Nest's dependency injection needs tsc's decorator metadata). */
export function buildApi(): void {
  log('building the api (nest build api) …');
  if (spawnSync('npx', ['nest', 'build', 'api'], { cwd: REPO, stdio: 'inherit' }).status !== 0)
    throw new Error('nest build api failed');
}

/** The bench database (created if missing), migrated and emptied, and the bench Redis db emptied. */
export async function prepareStores(
  databaseUrl: string,
  benchDatabaseUrl: string,
  database: string,
  redisUrl: string,
): Promise<void> {
  const server = new DataSource({ type: 'postgres', url: databaseUrl });
  await server.initialize();
  try {
    const found = (await server.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [database])) as unknown[];
    if (found.length === 0) await server.query(`CREATE DATABASE "${database}"`);
  } finally {
    await server.destroy();
  }
  const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: benchDatabaseUrl }));
  await dataSource.initialize();
  try {
    await dataSource.runMigrations();
    await dataSource.query(
      `TRUNCATE model_versions, rollout_events, user_features, item_features, events, prediction_log, live_labelled,
         live_aggregates, live_canary_epochs, serving_stats CASCADE`,
    );
    await dataSource.query(
      `UPDATE live_watermark SET ingest_xid = '0', event_id = '', late_ingest_xid = '0', late_event_id = ''`,
    );
  } finally {
    await dataSource.destroy();
  }
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  redis.disconnect();
}

export function startApi(env: Record<string, string>): ChildProcess {
  // `--api-cpu-prof DIR`: a V8 CPU profile of each API process, written to DIR as it exits (node refuses --cpu-prof
  // in NODE_OPTIONS, so it cannot be passed through the environment).
  const profileDir = flagValue('api-cpu-prof');
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : [];
  // Nest's dependency injection needs the decorator metadata that tsc emits (tsx does not), hence the built API.
  const child = spawn(process.execPath, [...profile, ...API_NODE_FLAGS, MAIN], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: false,
  });
  child.on('exit', (code, signal) => {
    if (code !== null && code !== 0) log(`api exited with code ${code}${signal ? ` (${signal})` : ''}`);
  });
  return child;
}

/** The built API on the bench stores at `port`, retraining off and no prediction logged, with `env` on top. */
export function startStoresApi(
  stores: { databaseUrl: string; redisUrl: string },
  port: number,
  adminToken: string,
  env: Record<string, string> = {},
): ChildProcess {
  return startApi({
    DATABASE_URL: stores.databaseUrl,
    REDIS_URL: stores.redisUrl,
    API_PORT: String(port),
    API_HOST: '127.0.0.1',
    ADMIN_TOKEN: adminToken,
    RETRAIN_ENABLED: 'false',
    PREDICTION_LOG_SAMPLE: '0',
    ...env,
  });
}

export async function waitFor(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
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
