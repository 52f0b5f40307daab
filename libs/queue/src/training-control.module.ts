import { Module } from '@nestjs/common';

import { TrainingScheduleStoreModule } from '@app/db';
import { RedisModule } from '@app/redis';

import { QueueModule } from './queue.module';
import { TrainingCancellationRepository } from './training-cancellation.repository';
import { TrainingScheduleService } from './training-schedule.service';

/**
 * The cluster-wide controls of training: the retraining schedule (stored in Postgres, its job registered by every
 * process) and the cancellation flags. Imported by the API, which changes them, and by the worker, which obeys them.
 */
@Module({
  imports: [QueueModule, RedisModule, TrainingScheduleStoreModule],
  providers: [TrainingScheduleService, TrainingCancellationRepository],
  exports: [QueueModule, TrainingScheduleService, TrainingCancellationRepository],
})
export class TrainingControlModule {}
