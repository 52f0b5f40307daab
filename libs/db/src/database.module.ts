import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { dataSourceOptions } from './data-source.options';
import { ReadReplica } from './read-replica';

/**
 * The Postgres connection (repositories reach it through the DataSource), and the optional read replica for the reads
 * that tolerate lag; the schema is owned by migrations/ (never synchronize).
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({ inject: [APP_CONFIG], useFactory: (config: AppConfig) => dataSourceOptions(config) }),
  ],
  providers: [ReadReplica],
  exports: [TypeOrmModule, ReadReplica],
})
export class DatabaseModule {}
