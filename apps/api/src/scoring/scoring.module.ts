import { Module } from '@nestjs/common';

import { LiveTrafficModule } from '../live/live-traffic.module';
import { ModelsModule } from '../models/models.module';
import { PlatformModule } from '../platform/platform.module';
import { RequestAssemblyModule } from './request-assembly.module';
import { ScoringAdmission } from './scoring.admission';
import { ScoringController } from './scoring.controller';
import { ScoringMetrics } from './scoring.metrics';
import { ScoringService } from './scoring.service';

@Module({
  imports: [RequestAssemblyModule, ModelsModule, PlatformModule, LiveTrafficModule],
  controllers: [ScoringController],
  providers: [ScoringService, ScoringMetrics, ScoringAdmission],
})
export class ScoringModule {}
