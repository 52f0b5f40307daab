import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';

import { startApi, type AppProcess } from './fixtures/app.process';
import { seedModelVersion, tinyItem, tinyUser } from './fixtures/model.fixture';
import { startPostgresServer, type PostgresServer } from './fixtures/store.servers';

const TOKEN = 'postgres-outage-test-token';
const ITEMS = Array.from({ length: 10 }, (_, i) => `i${i}`);

// The API on a Postgres cluster of its own, stopped under scoring load and started again: cached scoring keeps
// answering, every route that needs Postgres answers 503 "database unavailable", and all recover by themselves.
describe('Postgres outage (e2e)', () => {
  let postgres: PostgresServer;
  let api: AppProcess;
  let base: string;

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    postgres = await startPostgresServer();
    const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: postgres.url }));
    await dataSource.initialize();
    await dataSource.runMigrations();
    await seedModelVersion(dataSource, 'production');
    await dataSource.destroy();
    const redis = new Redis(process.env.REDIS_URL!);
    await redis.flushdb();
    redis.disconnect();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    api = await startApi({
      DATABASE_URL: postgres.url,
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      ADMIN_TOKEN: TOKEN,
    });
    base = `http://127.0.0.1:${port}`;
    await call('PUT', '/v1/users/u1/features', { features: tinyUser(1) });
    await call('PUT', '/v1/items/features', { entities: ITEMS.map((id, i) => ({ id, features: tinyItem(i) })) });
  }, 180_000);

  afterAll(async () => {
    await api?.stop();
    await postgres?.destroy();
  });

  it('keeps scoring cached features, answers 503 where Postgres is needed, and recovers by itself', async () => {
    const score = (itemIds = ITEMS) => call('POST', '/v1/score', { userId: 'u1', itemIds });
    expect((await score()).status).toBe(200); // fills the cache

    let loading = true;
    const statuses: number[] = [];
    const load = (async () => {
      while (loading) statuses.push((await score().catch(() => ({ status: 0 }))).status);
    })();

    await postgres.stop();
    const stoppedAt = statuses.length;
    const down = {
      list: await call('GET', '/admin/models'),
      feature: await call('PUT', '/v1/items/i0/features', { features: tinyItem(3) }),
      event: await call('POST', '/v1/events', {
        events: [{ eventId: 'e1', userId: 'u1', itemId: 'i1', labels: { click: 1 } }],
      }),
      uncached: await score(['never-seen']),
      rollouts: await call('GET', '/admin/rollouts'),
    };
    for (const response of Object.values(down)) {
      expect(response).toEqual({ status: 503, body: expect.objectContaining({ message: 'database unavailable' }) });
    }
    const ready = await call('GET', '/health/ready');
    expect(ready).toEqual({
      status: 503,
      body: expect.objectContaining({ checks: expect.objectContaining({ postgres: 'down' }) }),
    });
    // Bounded load through the outage: at least 50 more score requests while Postgres is down.
    while (statuses.length < stoppedAt + 50) await new Promise((r) => setTimeout(r, 20));
    const duringOutage = statuses.length - stoppedAt;

    await postgres.start();
    const restarted = performance.now();
    while ((await call('GET', '/admin/models')).status !== 200) await new Promise((r) => setTimeout(r, 50));
    const recoverySeconds = (performance.now() - restarted) / 1000;
    expect((await call('PUT', '/v1/items/i0/features', { features: tinyItem(0) })).status).toBe(200);
    expect((await score(['never-seen'])).status).toBe(200);
    loading = false;
    await load;

    const failed = statuses.filter((s) => s !== 200).length;
    process.stdout.write(
      `postgres outage: ${statuses.length} score requests (${duringOutage} while Postgres was down), ${failed} failed; ` +
        `admin API back ${recoverySeconds.toFixed(2)} s after Postgres restarted\n`,
    );
    expect(failed).toBe(0);
    expect(duringOutage).toBeGreaterThan(0);
    expect(recoverySeconds).toBeLessThan(15);
  }, 120_000);
});
