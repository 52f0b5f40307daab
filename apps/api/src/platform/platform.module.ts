import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { ErrorFilter } from './error.filter';
import { JsonLogger } from './json-logger';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { WindowCounterStorage } from './rate-limit.storage';
import { UnreadInputGuard } from './unread-input.guard';

/** The window of RATE_LIMIT_PER_MINUTE, shared by the Nest guard and the Bull Board hook. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/** Cross-cutting HTTP concerns: JSON logs, rate limiting, errors to statuses and the Prometheus registry (see also app.setup.ts). */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        throttlers: [{ ttl: RATE_LIMIT_WINDOW_MS, limit: config.RATE_LIMIT_PER_MINUTE }],
        storage: new WindowCounterStorage(),
      }),
    }),
  ],
  controllers: [MetricsController],
  providers: [
    MetricsService,
    JsonLogger,
    { provide: APP_GUARD, useClass: ThrottlerGuard },
    { provide: APP_GUARD, useClass: UnreadInputGuard },
    { provide: APP_FILTER, useClass: ErrorFilter },
  ],
  exports: [MetricsService, JsonLogger],
})
export class PlatformModule {}
