import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { dataSourceOptions } from './data-source.options';
import { ReadReplica } from './read-replica';

/**
 * The Postgres connection (repositories reach it through the DataSource), and the optional read replica for the reads
 * that tolerate lag; the schema is owned by migrations/ (never synchronize).
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      // Two more tries a second apart, not TypeORM's nine 3 s apart: a Postgres that is not there at boot fails the
      // start in seconds, for the supervisor to retry (compose waits for a healthy Postgres anyway).
      useFactory: (config: AppConfig) => ({ ...dataSourceOptions(config), retryAttempts: 2, retryDelay: 1000 }),
      dataSourceFactory: (options) => connect(options!),
    }),
  ],
  providers: [ReadReplica],
  exports: [TypeOrmModule, ReadReplica],
})
export class DatabaseModule {}

/**
 * The connection, with its failure naming the setting (Postgres's own message names neither: `database "x" does not
 * exist`), and refused on a schema with migrations still to run, whose every query would fail later, one by one.
 */
async function connect(options: DataSourceOptions): Promise<DataSource> {
  const where = 'url' in options && options.url ? serverOf(options.url) : 'its configured server';
  let dataSource: DataSource;
  try {
    dataSource = await new DataSource(options).initialize();
  } catch (e) {
    throw new Error(`Postgres at ${where} (DATABASE_URL): ${(e as Error).message}`);
  }
  if (await dataSource.showMigrations()) {
    await dataSource.destroy();
    throw new Error(
      `Postgres at ${where} (DATABASE_URL) has migrations to run: run them first (npm run migration:run, or the migrate service)`,
    );
  }
  return dataSource;
}

/** host:port/database of a URL, without its credentials. */
function serverOf(url: string): string {
  const { host, pathname } = new URL(url);
  return `${host}${pathname}`;
}
