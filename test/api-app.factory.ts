import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';

import { APP_CONFIG, loadConfig, type AppConfig } from '@app/config';

import { AppModule } from '../apps/api/src/app.module';
import { configureApp } from '../apps/api/src/app.setup';
import { APP_OPTIONS, createFastifyAdapter } from '../apps/api/src/platform/fastify-adapter';

/** The API as main.ts builds it, on the test database and Redis db (test-env.ts), ready for app.inject(). */
export async function createApiApp(
  overrides: Partial<Record<keyof AppConfig, string>> = {},
): Promise<NestFastifyApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(APP_CONFIG)
    .useValue(loadConfig({ ...process.env, ...overrides }))
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createFastifyAdapter(), APP_OPTIONS);
  configureApp(app);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
