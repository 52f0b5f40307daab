import { Module } from '@nestjs/common';

import { FeaturesRepositoryModule } from '@app/db';
import { RedisModule } from '@app/redis';

import { FeatureCacheRepository } from './feature-cache.repository';
import { FeatureChangeRepository } from './feature-change.repository';
import { FeatureStoreService } from './feature-store.service';
import { FeaturesController } from './features.controller';

/** The feature store API and FeatureStoreService.fetch(), the scoring path's source of features. */
@Module({
  imports: [FeaturesRepositoryModule, RedisModule],
  controllers: [FeaturesController],
  providers: [FeatureStoreService, FeatureCacheRepository, FeatureChangeRepository],
  exports: [FeatureStoreService, FeatureChangeRepository],
})
export class FeaturesModule {}
