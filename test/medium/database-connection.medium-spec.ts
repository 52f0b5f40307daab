import { DataSource } from 'typeorm';

import { DatabaseModule } from '@app/db';

import { compileMediumModule } from './medium.module';

// The start-up connection to Postgres (DatabaseModule) on the shared server: what a bad DATABASE_URL, or a schema
// not yet migrated, tells the operator, and how soon.
describe('DatabaseModule connection (medium: real Postgres)', () => {
  const base = new URL(process.env.DATABASE_URL!);
  const urlOf = (database: string) => Object.assign(new URL(base.href), { pathname: `/${database}` }).href;
  const boot = async (databaseUrl: string) =>
    (await compileMediumModule({ imports: [DatabaseModule] }, { DATABASE_URL: databaseUrl })).init();

  it('names DATABASE_URL, without its credentials, within seconds when its database does not exist', async () => {
    const started = performance.now();
    await expect(boot(urlOf('no_such_database'))).rejects.toThrow(
      `Postgres at ${base.host}/no_such_database (DATABASE_URL): database "no_such_database" does not exist`,
    );
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('refuses a database whose migrations have not run, naming how to run them', async () => {
    const admin = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL });
    await admin.initialize();
    const name = `unmigrated_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      await expect(boot(urlOf(name))).rejects.toThrow(
        `Postgres at ${base.host}/${name} (DATABASE_URL) has migrations to run: run them first`,
      );
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    }
  });
});
