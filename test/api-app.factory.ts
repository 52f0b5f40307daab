import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { FastifyInstance } from 'fastify';

import { APP_CONFIG, loadConfig, type AppConfig } from '@app/config';

import { AppModule } from '../apps/api/src/app.module';
import { configureApp } from '../apps/api/src/app.setup';
import { APP_OPTIONS, createFastifyAdapter } from '../apps/api/src/platform/fastify-adapter';

/**
 * The API as main.ts builds it, on the test database and Redis db (test-env.ts), ready for app.inject().
 * `instrument` may add Fastify hooks before anything is registered (e.g. to see every route).
 */
export async function createApiApp(
  overrides: Partial<Record<keyof AppConfig, string>> = {},
  instrument?: (fastify: FastifyInstance) => void,
): Promise<NestFastifyApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(APP_CONFIG)
    .useValue(loadConfig({ ...process.env, ...overrides }))
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createFastifyAdapter(), APP_OPTIONS);
  instrument?.(app.getHttpAdapter().getInstance());
  configureApp(app);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
