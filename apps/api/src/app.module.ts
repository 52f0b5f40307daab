import { Module } from '@nestjs/common';

import { ConfigModule } from '@app/config';

import { AdminModule } from './admin/admin.module';
import { EventsModule } from './events/events.module';
import { FeaturesModule } from './features/features.module';
import { HealthModule } from './health/health.module';
import { PlatformModule } from './platform/platform.module';
import { ScoringModule } from './scoring/scoring.module';
import { TrainingModule } from './training/training.module';

@Module({
  imports: [
    ConfigModule,
    AdminModule,
    PlatformModule,
    HealthModule,
    FeaturesModule,
    EventsModule,
    ScoringModule,
    TrainingModule,
  ],
})
export class AppModule {}
