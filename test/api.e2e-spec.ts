import type { NestFastifyApplication } from '@nestjs/platform-fastify';

import { createApiApp } from './api-app.factory';

describe('api (e2e)', () => {
  let app: NestFastifyApplication;

  beforeAll(async () => {
    app = await createApiApp();
  });

  afterAll(() => app.close());

  it('GET /health/live answers 200 ok', async () => {
    const response = await app.inject({ method: 'GET', url: '/health/live' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });
});
