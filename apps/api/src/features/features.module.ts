import { Module } from '@nestjs/common';

import { FeaturesRepositoryModule } from '@app/db';
import { RedisModule } from '@app/redis';

import { PlatformModule } from '../platform/platform.module';
import { FeatureCacheRepository } from './feature-cache.repository';
import { FeatureChangeRepository } from './feature-change.repository';
import { FeatureStoreService } from './feature-store.service';
import { FeaturesController } from './features.controller';
import { UserRowFallback } from './user-rows.fallback';

/** The feature store API and FeatureStoreService.fetch(), the scoring path's source of features. */
@Module({
  imports: [FeaturesRepositoryModule, RedisModule, PlatformModule],
  controllers: [FeaturesController],
  providers: [FeatureStoreService, FeatureCacheRepository, FeatureChangeRepository, UserRowFallback],
  exports: [FeatureStoreService, FeatureChangeRepository, FeatureCacheRepository],
})
export class FeaturesModule {}
