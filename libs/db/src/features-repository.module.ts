import { Module } from '@nestjs/common';

import { DatabaseModule } from './database.module';
import { EventRepository } from './repositories/event.repository';
import { FeatureRepository } from './repositories/feature.repository';

/** The feature store and event log repositories, shared by the API (serving, ingestion) and the worker (training). */
@Module({
  imports: [DatabaseModule],
  providers: [FeatureRepository, EventRepository],
  exports: [FeatureRepository, EventRepository],
})
export class FeaturesRepositoryModule {}
