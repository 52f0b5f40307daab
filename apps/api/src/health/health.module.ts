import { Module } from '@nestjs/common';

import { DatabaseModule } from '@app/db';
import { RedisModule } from '@app/redis';

import { ModelsModule } from '../models/models.module';
import { HealthController } from './health.controller';
import { HealthRepository } from './health.repository';
import { HealthService } from './health.service';

@Module({
  imports: [DatabaseModule, RedisModule, ModelsModule],
  controllers: [HealthController],
  providers: [HealthService, HealthRepository],
})
export class HealthModule {}
