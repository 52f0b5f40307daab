/** The stores that the benches share. */
import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import type { AppConfig } from '@app/config';
import { dataSourceOptions } from '@app/db';

import { flagValue } from './bench.util';

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
      'TRUNCATE model_versions, rollout_events, user_features, item_features, events, prediction_log CASCADE',
    );
  } finally {
    await dataSource.destroy();
  }
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  redis.disconnect();
}
