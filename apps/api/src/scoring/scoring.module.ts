import { Module } from '@nestjs/common';

import { FeaturesModule } from '../features/features.module';
import { LiveTrafficModule } from '../live/live-traffic.module';
import { ModelsModule } from '../models/models.module';
import { PlatformModule } from '../platform/platform.module';
import { ItemRowCache } from './item-rows.cache';
import { ScoringAdmission } from './scoring.admission';
import { ScoringController } from './scoring.controller';
import { ScoringMetrics } from './scoring.metrics';
import { ScoringService } from './scoring.service';

@Module({
  imports: [FeaturesModule, ModelsModule, PlatformModule, LiveTrafficModule],
  controllers: [ScoringController],
  providers: [ScoringService, ScoringMetrics, ScoringAdmission, ItemRowCache],
})
export class ScoringModule {}
