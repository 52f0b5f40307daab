import { Module } from '@nestjs/common';

import { ModelsModule } from '../models/models.module';
import { AdminAuthModule } from './admin-auth.module';
import { AdminController } from './admin.controller';

@Module({
  imports: [ModelsModule, AdminAuthModule],
  controllers: [AdminController],
})
export class AdminModule {}
