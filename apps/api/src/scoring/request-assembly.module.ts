import { Module } from '@nestjs/common';

import { FeaturesModule } from '../features/features.module';
import { ModelsModule } from '../models/models.module';
import { PlatformModule } from '../platform/platform.module';
import { ItemRowCache } from './item-rows.cache';
import { RequestAssembler } from './request-assembler';

/** The one path from a request to a model's input rows, for scoring and the shadow alike. */
@Module({
  imports: [FeaturesModule, ModelsModule, PlatformModule],
  providers: [RequestAssembler, ItemRowCache],
  exports: [RequestAssembler],
})
export class RequestAssemblyModule {}
