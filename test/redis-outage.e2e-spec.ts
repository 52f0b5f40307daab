import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';

import { startApi, type AppProcess } from './fixtures/app.process';
import { seedModelVersion, tinyItem, tinyUser } from './fixtures/model.fixture';
import { startRedisServer, type RedisServer } from './fixtures/store.servers';

const TOKEN = 'redis-outage-test-token';
const ITEMS = Array.from({ length: 10 }, (_, i) => `i${i}`);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The API on a redis-server of its own, SIGKILLed under scoring load and started again: scoring keeps answering 200
// from Postgres, the routes that need Redis answer 503, and the cache is back by itself soon after Redis is.
describe('Redis outage (e2e)', () => {
  let redis: RedisServer;
  let api: AppProcess;
  let base: string;

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: (text.startsWith('{') ? JSON.parse(text) : text) as Record<string, unknown>,
    };
  };
  const score = () => call('POST', '/v1/score', { userId: 'u1', itemIds: ITEMS });
  const cacheHits = async () =>
    Number(/^feature_cache_hits_total (\S+)$/m.exec((await call('GET', '/metrics')).body as unknown as string)?.[1]);

  beforeAll(async () => {
    redis = await startRedisServer();
    const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: process.env.DATABASE_URL! }));
    await dataSource.initialize();
    await dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features CASCADE');
    await seedModelVersion(dataSource, 'production');
    await dataSource.destroy();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    api = await startApi({ REDIS_URL: redis.url, API_PORT: String(port), API_HOST: '127.0.0.1', ADMIN_TOKEN: TOKEN });
    base = `http://127.0.0.1:${port}`;
    await call('PUT', '/v1/users/u1/features', { features: tinyUser(1) });
    await call('PUT', '/v1/items/features', { entities: ITEMS.map((id, i) => ({ id, features: tinyItem(i) })) });
  }, 180_000);

  afterAll(async () => {
    await api?.stop();
    await redis?.destroy();
  });

  it('scores through the outage, answers 503 where Redis is needed, and refills the cache within 2 s', async () => {
    await score();
    const warm = await cacheHits();
    expect((await score()).status).toBe(200);
    expect(await cacheHits()).toBeGreaterThan(warm);

    let loading = true;
    const statuses: number[] = [];
    const load = (async () => {
      while (loading) statuses.push((await score().catch(() => ({ status: 0 }))).status);
    })();

    await redis.kill();
    const killedAt = statuses.length;
    const down = {
      job: await call('POST', '/admin/training-jobs', { source: { kind: 'csv', path: '/nowhere.csv' } }),
      schedule: await call('GET', '/admin/training-schedule'),
      board: await call('GET', '/admin/queues'),
    };
    for (const response of Object.values(down)) {
      expect(response).toEqual({ status: 503, body: expect.objectContaining({ message: 'redis unavailable' }) });
    }
    expect(await call('GET', '/health/ready')).toEqual({
      status: 200,
      body: { status: 'degraded', checks: { postgres: 'up', redis: 'down', model: 'up' } },
    });
    // Bounded load through the outage: at least 50 more score requests while Redis is down.
    while (statuses.length < killedAt + 50) await pause(20);
    const duringOutage = statuses.length - killedAt;

    await redis.start();
    const restarted = performance.now();
    const hitsAtRestart = await cacheHits();
    while ((await cacheHits()) === hitsAtRestart) await pause(20);
    const cacheBackSeconds = (performance.now() - restarted) / 1000;
    loading = false;
    await load;
    while ((await call('GET', '/health/ready')).body.status !== 'ok') await pause(50);
    expect((await call('GET', '/admin/training-schedule')).status).toBe(200);

    const failed = statuses.filter((s) => s !== 200).length;
    process.stdout.write(
      `redis outage: ${statuses.length} score requests (${duringOutage} while Redis was down), ${failed} failed; ` +
        `cache hits again ${cacheBackSeconds.toFixed(2)} s after Redis restarted\n`,
    );
    expect(failed).toBe(0);
    expect(cacheBackSeconds).toBeLessThan(2);
    // Each connection's outage is logged once through the JSON logger, never as raw ioredis error lines.
    const output = api.output();
    expect(output).not.toContain('[ioredis] Unhandled error event');
    expect(output.match(/connection \\?"feature-cache\\?" unavailable/g)).toHaveLength(1);
    expect(output).toMatch(/connection \\?"feature-cache\\?" is back/);
  }, 120_000);
});
