import { Module } from '@nestjs/common';

import { DatabaseModule } from './database.module';
import { TrainingScheduleRepository } from './repositories/training-schedule.repository';

/** Where the retraining schedule is stored, for the API (which changes it) and the worker (which registers it too). */
@Module({
  imports: [DatabaseModule],
  providers: [TrainingScheduleRepository],
  exports: [TrainingScheduleRepository],
})
export class TrainingScheduleStoreModule {}
