import { Module } from '@nestjs/common';

import { RedisModule } from '@app/redis';

import { QueueModule } from './queue.module';
import { TrainingCancellationRepository } from './training-cancellation.repository';
import { TrainingScheduleRepository } from './training-schedule.repository';
import { TrainingScheduleService } from './training-schedule.service';

/**
 * The cluster-wide controls of training: the retraining schedule (ensured at every process's boot) and the
 * cancellation flags. Imported by the API, which changes them, and by the worker, which obeys them.
 */
@Module({
  imports: [QueueModule, RedisModule],
  providers: [TrainingScheduleRepository, TrainingScheduleService, TrainingCancellationRepository],
  exports: [QueueModule, TrainingScheduleService, TrainingCancellationRepository],
})
export class TrainingControlModule {}
