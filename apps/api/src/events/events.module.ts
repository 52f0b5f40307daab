import { Module } from '@nestjs/common';

import { FeaturesRepositoryModule } from '@app/db';

import { ModelsModule } from '../models/models.module';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';

/** Impression logging; ModelsModule provides the ProductionSpecSource the labels are checked against. */
@Module({
  imports: [FeaturesRepositoryModule, ModelsModule],
  controllers: [EventsController],
  providers: [EventsService],
})
export class EventsModule {}
