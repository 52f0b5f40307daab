import { Module } from '@nestjs/common';

import { DatabaseModule } from './database.module';
import { LiveStateRepository } from './repositories/live-state.repository';
import { PredictionLogRepository } from './repositories/prediction-log.repository';
import { ServingStatsRepository } from './repositories/serving-stats.repository';

/**
 * The served-prediction log, written by the API's scoring processes, and the live state (labelled predictions and
 * their aggregates) the online metrics and the rollout policy read, with every process's serving counts.
 */
@Module({
  imports: [DatabaseModule],
  providers: [PredictionLogRepository, LiveStateRepository, ServingStatsRepository],
  exports: [PredictionLogRepository, LiveStateRepository, ServingStatsRepository],
})
export class PredictionLogModule {}
