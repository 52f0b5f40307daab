import Redis from 'ioredis';
import { loadConfig, register } from 'tsconfig-paths';
import { DataSource } from 'typeorm';

import './test-env';

// Jest's moduleNameMapper does not reach globalSetup; resolve the @app/* aliases from tsconfig.json instead.
const tsconfig = loadConfig(__dirname);
if (tsconfig.resultType === 'success') register({ baseUrl: tsconfig.absoluteBaseUrl, paths: tsconfig.paths });

/** A clean, migrated test database and an empty Redis test db before the run. */
export default async function globalSetup(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the aliases are registered
  const { dataSourceOptions } = require('@app/db') as typeof import('@app/db');
  const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: process.env.DATABASE_URL! }));
  await dataSource.initialize();
  await dataSource.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  await dataSource.runMigrations();
  await dataSource.destroy();
  const redis = new Redis(process.env.REDIS_URL!);
  await redis.flushdb();
  redis.disconnect();
}
