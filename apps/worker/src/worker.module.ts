import { Module } from '@nestjs/common';

import { ConfigModule } from '@app/config';
import { FeaturesRepositoryModule } from '@app/db';
import { TrainingControlModule } from '@app/queue';
import { RedisModule } from '@app/redis';
import { RegistryModule } from '@app/registry';

import { TfjsBackendService } from './tfjs-backend.service';
import { CsvFileRepository } from './training/csv-file.repository';
import { TrainingDataService } from './training/training-data.service';
import { TrainingJobService } from './training/training-job.service';
import { TrainingProcessor } from './training/training.processor';

/** The training worker: consumes the training queue (TrainingControlModule brings the queue, the schedule and cancellation). */
@Module({
  imports: [ConfigModule, RedisModule, FeaturesRepositoryModule, RegistryModule, TrainingControlModule],
  providers: [TfjsBackendService, CsvFileRepository, TrainingDataService, TrainingJobService, TrainingProcessor],
})
export class WorkerModule {}
