import type { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';

import type { AppConfig } from '@app/config';
import { MIGRATIONS } from '@app/migrations';

import { ItemFeaturesEntity, UserFeaturesEntity } from './entities/entity-features.entity';
import { EventEntity } from './entities/event.entity';
import { ModelVersionEntity } from './entities/model-version.entity';
import { RolloutEventEntity } from './entities/rollout-event.entity';

export const ENTITIES = [ModelVersionEntity, RolloutEventEntity, UserFeaturesEntity, ItemFeaturesEntity, EventEntity];

/** One definition for Nest (TypeOrmModule) and the migrations CLI; the schema only ever changes through migrations. */
export function dataSourceOptions(config: Pick<AppConfig, 'DATABASE_URL'>): PostgresConnectionOptions {
  return {
    type: 'postgres',
    url: config.DATABASE_URL,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    synchronize: false,
    // A request fails (503) after this long when Postgres does not answer a connect, rather than hanging.
    connectTimeoutMS: 5000,
    migrationsTransactionMode: 'each',
  };
}
