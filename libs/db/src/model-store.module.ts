import { Module } from '@nestjs/common';

import { DatabaseModule } from './database.module';
import { ModelVersionRepository } from './repositories/model-version.repository';
import { RolloutRepository } from './repositories/rollout.repository';

/** The model registry's storage (versions and rollout history), for the API and the worker. */
@Module({
  imports: [DatabaseModule],
  providers: [ModelVersionRepository, RolloutRepository],
  exports: [ModelVersionRepository, RolloutRepository],
})
export class ModelStoreModule {}
