import { DataSource } from 'typeorm';

import { loadConfig } from '@app/config';
import { dataSourceOptions } from '@app/db';

/**
 * Applies the pending migrations and exits: compose's one-shot `migrate` service (`node
 * dist/apps/api/apps/api/src/migrate`) and `npm run demo` run it before the API and the worker start, which never
 * change the schema themselves, so replicas starting together cannot race on it.
 */
async function migrate(): Promise<void> {
  const dataSource = new DataSource(dataSourceOptions(loadConfig()));
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations();
    process.stdout.write(
      applied.length ? `applied migrations: ${applied.map((m) => m.name).join(', ')}\n` : 'schema up to date\n',
    );
  } finally {
    await dataSource.destroy();
  }
}

migrate().catch((error: Error) => {
  process.stderr.write(`migration failed: ${error.message}\n`);
  process.exit(1);
});
