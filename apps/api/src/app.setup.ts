import type { NestFastifyApplication } from '@nestjs/platform-fastify';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { installHttpHooks } from './platform/http-hooks';
import { MetricsService } from './platform/metrics.service';
import { setupSwagger } from './platform/swagger';
import { createValidationPipe } from './platform/validation';

/**
 * Everything main.ts applies to the app besides logging and listening, shared with the e2e tests so that they
 * exercise the same validation, limits and documentation as production. Must run before app.init().
 */
export function configureApp(app: NestFastifyApplication): void {
  installHttpHooks(app.getHttpAdapter().getInstance(), app.get<AppConfig>(APP_CONFIG), app.get(MetricsService));
  app.useGlobalPipes(createValidationPipe());
  setupSwagger(app);
  app.enableShutdownHooks();
}
