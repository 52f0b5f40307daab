import { Module } from '@nestjs/common';

import { ModelStoreModule } from '@app/db';
import { RedisModule } from '@app/redis';

import { ModelChangeRepository } from './model-change.repository';
import { ModelRegistryService } from './model-registry.service';

/** The model registry: rollout rules over Postgres, change notices over Redis; used by the API and the worker. */
@Module({
  imports: [ModelStoreModule, RedisModule],
  providers: [ModelChangeRepository, ModelRegistryService],
  exports: [ModelChangeRepository, ModelRegistryService],
})
export class RegistryModule {}
