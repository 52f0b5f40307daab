import { Module } from '@nestjs/common';

import { ModelsModule } from '../models/models.module';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminController } from './admin.controller';

@Module({
  imports: [ModelsModule],
  controllers: [AdminController],
  providers: [AdminTokenGuard],
})
export class AdminModule {}
