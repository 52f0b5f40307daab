import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { REDIS } from '@app/redis';

import { FeatureStoreService } from '../apps/api/src/features/feature-store.service';
import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import { createApiApp } from './api-app.factory';
import { seedModelVersion, tinyItem, tinyUser } from './fixtures/model.fixture';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('platform (e2e)', () => {
  let app: NestFastifyApplication;
  let dataSource: DataSource;

  const truncate = () =>
    dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features CASCADE');
  const score = (target: NestFastifyApplication, payload: object) =>
    target.inject({ method: 'POST', url: '/v1/score', payload });

  beforeAll(async () => {
    app = await createApiApp();
    dataSource = app.get(DataSource);
    await truncate();
    await app.get<Redis>(REDIS).flushdb();
    // The app loaded whatever an earlier spec left serving before the truncate: it must see the empty registry.
    await app.get(ModelLifecycleService).refresh();
  });

  afterAll(async () => {
    await truncate();
    await app.close();
  });

  describe('limits', () => {
    let limited: NestFastifyApplication;

    beforeAll(async () => {
      limited = await createApiApp({ BODY_LIMIT_BYTES: '4096', ADMIN_BODY_LIMIT_BYTES: '65536' });
    });

    afterAll(() => limited.close());

    it('answers 413 to a body over BODY_LIMIT_BYTES, and lets @LargeBody routes take up to ADMIN_BODY_LIMIT_BYTES', async () => {
      const itemIds = Array.from({ length: 600 }, (_, i) => `item-${i}`);
      expect((await score(limited, { userId: 'u', itemIds })).statusCode).toBe(413);
      const entities = Array.from({ length: 300 }, (_, i) => ({ id: `item-${i}`, features: { item_price: i } }));
      const bulk = await limited.inject({ method: 'PUT', url: '/v1/items/features', payload: { entities } });
      expect(JSON.stringify({ entities }).length).toBeGreaterThan(4096);
      expect(bulk.statusCode).toBe(200);
      const huge = Array.from({ length: 3000 }, (_, i) => ({ id: `item-${i}`, features: { item_price: i } }));
      expect(
        (await limited.inject({ method: 'PUT', url: '/v1/items/features', payload: { entities: huge } })).statusCode,
      ).toBe(413);
    });

    it('answers 413 to a body over the default 1 MiB', async () => {
      expect((await score(app, { userId: 'u', itemIds: ['x'.repeat(1_100_000)] })).statusCode).toBe(413);
    });

    it('answers 429 past RATE_LIMIT_PER_MINUTE, but never throttles the probes', async () => {
      const throttled = await createApiApp({ RATE_LIMIT_PER_MINUTE: '2' });
      try {
        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await score(throttled, { userId: 'u', itemIds: ['i'] })).statusCode);
        expect(statuses.map((s) => s === 429)).toEqual([false, false, true, true]);
        for (let i = 0; i < 3; i++)
          expect((await throttled.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
      } finally {
        await throttled.close();
      }
    });

    it('throttles Bull Board like the admin API, before it even checks the token', async () => {
      const throttled = await createApiApp({ RATE_LIMIT_PER_MINUTE: '2' });
      try {
        const authorization = `Bearer ${throttled.get<AppConfig>(APP_CONFIG).ADMIN_TOKEN}`;
        const board = (headers: Record<string, string>) =>
          throttled.inject({ method: 'GET', url: '/admin/queues', headers });
        const statuses = [(await board({ authorization })).statusCode, (await board({})).statusCode];
        const limited = await board({ authorization });
        expect(statuses).toEqual([200, 401]);
        expect(limited.statusCode).toBe(429);
        expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      } finally {
        await throttled.close();
      }
    });

    it('caches at most FEATURE_NEGATIVE_CACHE_PER_REQUEST unknown ids of one request', async () => {
      const capped = await createApiApp({ FEATURE_NEGATIVE_CACHE_PER_REQUEST: '5' });
      try {
        const redis = capped.get<Redis>(REDIS);
        const schema = { version: 'negative-cap', featureNames: ['item_price'] };
        const unknown = Array.from({ length: 500 }, (_, i) => `made-up-${i}`);
        const fetched = await capped.get(FeatureStoreService).fetch(schema, 'made-up-user', unknown);
        expect(fetched.cacheMisses).toBe(501);
        // The fill is queued on the connection before fetch returns: a later command on it runs after it.
        await redis.ping();
        expect(await redis.keys('feat:negative-cap:*')).toHaveLength(5);
      } finally {
        await capped.close();
      }
    });

    it('cuts off a client whose headers do not arrive within HTTP_HEADERS_TIMEOUT_MS', async () => {
      const timed = await createApiApp({ HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '1000' });
      try {
        await timed.listen(0, '127.0.0.1');
        const { port } = timed.getHttpServer().address() as { port: number };
        const socket = connect(port, '127.0.0.1');
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        // The request line and one header, then nothing: the blank line that ends the headers never comes.
        socket.write('GET /health/live HTTP/1.1\r\nHost: localhost\r\n');
        const started = Date.now();
        await new Promise<void>((resolve) => socket.on('close', () => resolve()));
        // Well before the 10 s default, which Node's own 30 s check interval would stretch further.
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(900);
        expect(elapsed).toBeLessThan(9000);
        expect(received).toMatch(/^HTTP\/1\.1 408/);
      } finally {
        await timed.close();
      }
    });
  });

  it('lists every failing field path with its message in a 400', async () => {
    const response = await score(app, { userId: 7, itemIds: 'i-1', extra: true });
    expect(response.statusCode).toBe(400);
    const body = response.json<{ message: string[]; errors: { field: string; message: string }[] }>();
    expect(new Set(body.errors.map((e) => e.field))).toEqual(new Set(['userId', 'itemIds', 'extra']));
    for (const error of body.errors) expect(error.message).toContain(error.field);
    expect(body.message).toEqual(body.errors.map((e) => e.message));

    const nested = await app.inject({
      method: 'PUT',
      url: '/v1/items/features',
      payload: { entities: [{ id: 'ok', features: {} }, { features: {} }] },
    });
    expect(nested.statusCode).toBe(400);
    expect(nested.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toContain('entities.1.id');
  });

  it('echoes a given x-request-id and generates one otherwise', async () => {
    const given = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'req-42' } });
    expect(given.headers['x-request-id']).toBe('req-42');
    const generated = await app.inject({ method: 'GET', url: '/health/live' });
    expect(generated.headers['x-request-id']).toMatch(UUID);
    const unusable = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'a b\u00e9' } });
    expect(unusable.headers['x-request-id']).toMatch(UUID);
  });

  it('sends X-Content-Type-Options: nosniff with every answer: success, errors, 404, Bull Board, docs, metrics', async () => {
    const limited = await createApiApp({ ADMIN_TOKEN: 'nosniff-token', BODY_LIMIT_BYTES: '4096' });
    try {
      const admin = { authorization: 'Bearer nosniff-token' };
      const json = { 'content-type': 'application/json' };
      const requests: [string, Parameters<NestFastifyApplication['inject']>[0]][] = [
        ['200', { method: 'GET', url: '/health/live' }],
        ['400', { method: 'POST', url: '/v1/score', headers: json, payload: '{}' }],
        ['400 from the parser', { method: 'POST', url: '/v1/score', headers: json, payload: '{' }],
        ['401', { method: 'GET', url: '/admin/models' }],
        ['404', { method: 'GET', url: '/no/such/route' }],
        ['404 of a version', { method: 'GET', url: '/admin/models/999999', headers: admin }],
        ['413', { method: 'POST', url: '/v1/score', headers: json, payload: `"${'x'.repeat(5000)}"` }],
        ['415', { method: 'POST', url: '/v1/score', headers: { 'content-type': 'text/plain' }, payload: 'x' }],
        ['Bull Board 401', { method: 'GET', url: '/admin/queues' }],
        ['Bull Board page', { method: 'GET', url: '/admin/queues', headers: admin }],
        ['Bull Board API', { method: 'GET', url: '/admin/queues/api/queues', headers: admin }],
        ['/docs', { method: 'GET', url: '/docs' }],
        ['/docs-json', { method: 'GET', url: '/docs-json' }],
        ['/metrics', { method: 'GET', url: '/metrics' }],
      ];
      for (const [name, request] of requests) {
        const response = await limited.inject(request);
        expect({ name, header: response.headers['x-content-type-options'] }).toEqual({ name, header: 'nosniff' });
      }
    } finally {
      await limited.close();
    }
  });

  it('reads bodies as UTF-8 only: another declared charset is a 415', async () => {
    const send = (contentType: string) =>
      app.inject({ method: 'POST', url: '/v1/score', headers: { 'content-type': contentType }, payload: '{}' });
    for (const contentType of ['application/json; charset=utf-16', 'application/json;charset="UTF-16LE"']) {
      const response = await send(contentType);
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({ statusCode: 415, error: 'Unsupported Media Type' });
      expect(response.json().message).toMatch(/charset "utf-16(le)?" is not supported/);
    }
    // Readable: past the parser, the DTO refuses the empty object (400).
    for (const contentType of [
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=UTF-8',
      'Application/JSON; Charset="utf-8"',
    ])
      expect({ contentType, status: (await send(contentType)).statusCode }).toEqual({ contentType, status: 400 });
    // Nor is a body decoded: gzip was refused as "not valid UTF-8 (at byte 1)", a body merely labelled so read as is.
    for (const payload of [gzipSync('{"userId":"u1","itemIds":["i1"]}'), Buffer.from('{}')]) {
      const encoded = await app.inject({
        method: 'POST',
        url: '/v1/score',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        payload,
      });
      expect(encoded.statusCode).toBe(415);
      expect(encoded.json().message).toMatch(/content-encoding "gzip" is not supported/);
    }
  });

  it('refuses a body that is not UTF-8, naming where, rather than read it with U+FFFD', async () => {
    const send = (bytes: number[]) =>
      app.inject({
        method: 'POST',
        url: '/v1/score',
        headers: { 'content-type': 'application/json' },
        payload: Buffer.concat([Buffer.from('{"userId":"u'), Uint8Array.from(bytes), Buffer.from('"}')]),
      });
    // A 4-byte character cut to 3 decodes to one U+FFFD of 3 bytes: Fastify's string read passed it on, changed.
    for (const bytes of [[0xf0, 0x9f, 0x98], [0xff]]) {
      const response = await send(bytes);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        message: ['body is not valid UTF-8 (at byte 12)'],
        errors: [{ field: 'body', message: 'body is not valid UTF-8 (at byte 12)' }],
      });
    }
  });

  it('serves the OpenAPI UI at /docs and its document at /docs-json', async () => {
    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
    const document = (await app.inject({ method: 'GET', url: '/docs-json' })).json<{
      paths: Record<string, unknown>;
    }>();
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/v1/score', '/health/ready', '/health/live']));
  });

  describe('readiness and metrics', () => {
    it('is not ready without a production model', async () => {
      const response = await app.inject({ method: 'GET', url: '/health/ready' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toEqual({
        status: 'unavailable',
        checks: { postgres: 'up', redis: 'up', model: 'down' },
      });
    });

    it('is ready with one, and exposes the scoring histograms and the served version after a score', async () => {
      const versionId = await seedModelVersion(dataSource, 'production');
      await app.get(ModelLifecycleService).refresh();
      const ready = await app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: 'ok', checks: { postgres: 'up', redis: 'up', model: 'up' } });

      await app.inject({ method: 'PUT', url: '/v1/users/u1/features', payload: { features: tinyUser(1) } });
      await app.inject({
        method: 'PUT',
        url: '/v1/items/features',
        payload: { entities: [0, 1, 2].map((i) => ({ id: `i${i}`, features: tinyItem(i) })) },
      });
      for (let i = 0; i < 2; i++)
        expect((await score(app, { userId: 'u1', itemIds: ['i0', 'i1', 'i2'] })).statusCode).toBe(200);

      const metrics = await app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
      const sample = (series: string) => Number(new RegExp(`^${escape(series)} (\\S+)$`, 'm').exec(metrics.body)?.[1]);
      for (const stage of ['features', 'assembly', 'inference', 'ranking'])
        expect(sample(`scoring_stage_duration_seconds_count{stage="${stage}"}`)).toBe(2);
      expect(sample('scoring_total_duration_seconds_count')).toBe(2);
      expect(sample('scored_candidates_total{role="production"}')).toBe(6);
      // The first request encodes the 3 items and caches them in memory; the second asks Redis for the user only.
      expect(sample('item_row_cache_misses_total')).toBe(3);
      expect(sample('item_row_cache_hits_total')).toBe(3);
      expect(sample('item_row_cache_hit_ratio')).toBe(0.5);
      expect(sample('item_row_cache_entries')).toBe(3);
      expect(sample('feature_cache_hits_total') + sample('feature_cache_misses_total')).toBe(5);
      expect(sample('feature_cache_hits_total')).toBeGreaterThanOrEqual(1);
      expect(sample(`served_model_version{role="production",version="${versionId}",precision="fp32"}`)).toBe(1);
      expect(sample('http_request_duration_seconds_count{method="POST",route="/v1/score",status_code="200"}')).toBe(2);
    });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
