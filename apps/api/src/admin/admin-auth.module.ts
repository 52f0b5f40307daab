import { Module } from '@nestjs/common';

import { AdminTokenGuard } from './admin-token.guard';

/** The admin token check, provided once for every module with admin routes (controllers and the Bull Board). */
@Module({
  providers: [AdminTokenGuard],
  exports: [AdminTokenGuard],
})
export class AdminAuthModule {}
