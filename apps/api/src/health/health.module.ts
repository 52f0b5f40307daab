import { Module } from '@nestjs/common';

import { DatabaseModule } from '@app/db';
import { RedisModule } from '@app/redis';

import { FeaturesModule } from '../features/features.module';
import { ModelsModule } from '../models/models.module';
import { PlatformModule } from '../platform/platform.module';
import { HealthController } from './health.controller';
import { HealthRepository } from './health.repository';
import { HealthService } from './health.service';
import { StoreMetrics } from './store.metrics';

@Module({
  imports: [DatabaseModule, RedisModule, ModelsModule, FeaturesModule, PlatformModule],
  controllers: [HealthController],
  providers: [HealthService, HealthRepository, StoreMetrics],
})
export class HealthModule {}
