import { Module } from '@nestjs/common';

import { FeaturesRepositoryModule } from '@app/db';

import { FeaturesModule } from '../features/features.module';
import { ModelsModule } from '../models/models.module';
import { PlatformModule } from '../platform/platform.module';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';
import { FedListBackfill } from './fed-list-backfill.service';

/**
 * Impression logging; ModelsModule provides the ProductionSpecSource the labels are checked against (and the served
 * versions whose fed lists are backfilled), FeaturesModule the cache invalidation of the lists events feed.
 */
@Module({
  imports: [FeaturesRepositoryModule, FeaturesModule, ModelsModule, PlatformModule],
  controllers: [EventsController],
  providers: [EventsService, FedListBackfill],
})
export class EventsModule {}
