import { Module } from '@nestjs/common';

import { DatabaseModule } from './database.module';
import { PredictionLogRepository } from './repositories/prediction-log.repository';

/** The served-prediction log, written by the API's scoring processes and read by the online metrics. */
@Module({
  imports: [DatabaseModule],
  providers: [PredictionLogRepository],
  exports: [PredictionLogRepository],
})
export class PredictionLogModule {}
