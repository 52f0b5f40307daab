import { Module } from '@nestjs/common';

import { LiveTrafficModule } from '../live/live-traffic.module';
import { ModelsModule } from '../models/models.module';
import { AdminAuthModule } from './admin-auth.module';
import { ModelsController } from './models.controller';
import { RolloutsController } from './rollouts.controller';

@Module({
  imports: [ModelsModule, LiveTrafficModule, AdminAuthModule],
  controllers: [ModelsController, RolloutsController],
})
export class AdminModule {}
