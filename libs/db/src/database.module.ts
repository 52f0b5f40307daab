import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { dataSourceOptions } from './data-source.options';

/** The Postgres connection (repositories reach it through the DataSource); the schema is owned by migrations/ (never synchronize). */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({ inject: [APP_CONFIG], useFactory: (config: AppConfig) => dataSourceOptions(config) }),
  ],
  exports: [TypeOrmModule],
})
export class DatabaseModule {}
