import type { NestFastifyApplication } from '@nestjs/platform-fastify';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { installHttpHooks } from './platform/http-hooks';
import { installJsonBodyParser } from './platform/json-body.parser';
import { JsonLogger } from './platform/json-logger';
import { MetricsService } from './platform/metrics.service';
import { setupSwagger } from './platform/swagger';
import { createValidationPipe } from './platform/validation';

/**
 * Everything main.ts applies to the app besides logging and listening, shared with the e2e tests so that they
 * exercise the same validation, limits and documentation as production. Must run before app.init().
 */
export function configureApp(app: NestFastifyApplication): void {
  const metrics = app.get(MetricsService);
  const fastify = app.getHttpAdapter().getInstance();
  installHttpHooks(fastify, app.get<AppConfig>(APP_CONFIG), metrics, app.get(JsonLogger));
  installJsonBodyParser(fastify);
  app.useGlobalPipes(createValidationPipe((dto, seconds) => metrics.observeValidation(dto, seconds)));
  setupSwagger(app);
  app.enableShutdownHooks();
}
