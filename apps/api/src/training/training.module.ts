import { Module } from '@nestjs/common';

import { FeaturesRepositoryModule } from '@app/db';
import { TrainingControlModule } from '@app/queue';
import { RegistryModule } from '@app/registry';

import { AdminAuthModule } from '../admin/admin-auth.module';
import { BullBoardMount } from './bull-board.mount';
import { TrainingJobsController } from './training-jobs.controller';
import { TrainingJobsRepository } from './training-jobs.repository';
import { TrainingJobsService } from './training-jobs.service';
import { TrainingScheduleController } from './training-schedule.controller';

/** Admin control of training: jobs, the retraining schedule and the queue board (the worker does the training). */
@Module({
  imports: [TrainingControlModule, RegistryModule, AdminAuthModule, FeaturesRepositoryModule],
  controllers: [TrainingJobsController, TrainingScheduleController],
  providers: [TrainingJobsRepository, TrainingJobsService, BullBoardMount],
})
export class TrainingModule {}
