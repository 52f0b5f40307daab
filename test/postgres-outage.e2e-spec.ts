import Redis from 'ioredis';

import { tinyItem } from './fixtures/model.fixture';
import { keepSending, pause, seedProduction, startServingApi, type ServingApi } from './fixtures/outage.fixture';
import { startPostgresServer, type PostgresServer } from './fixtures/store.servers';

// The API on a Postgres cluster of its own, stopped under scoring load and started again: cached scoring keeps
// answering, every route that needs Postgres answers 503 "database unavailable", and all recover by themselves.
describe('Postgres outage (e2e)', () => {
  let postgres: PostgresServer;
  let api: ServingApi;

  beforeAll(async () => {
    postgres = await startPostgresServer();
    await seedProduction(postgres.url, true);
    const redis = new Redis(process.env.REDIS_URL!);
    await redis.flushdb();
    redis.disconnect();
    api = await startServingApi({ DATABASE_URL: postgres.url });
  }, 180_000);

  afterAll(async () => {
    await api?.process.stop();
    await postgres?.destroy();
  });

  it('keeps scoring cached features, answers 503 where Postgres is needed, and recovers by itself', async () => {
    expect((await api.score()).status).toBe(200); // fills the cache
    const load = keepSending(() => api.score());

    await postgres.stop();
    const stoppedAt = load.statuses.length;
    const down = {
      list: await api.call('GET', '/admin/models'),
      rollouts: await api.call('GET', '/admin/rollouts'),
      feature: await api.call('PUT', '/v1/items/i0/features', { features: tinyItem(3) }),
      event: await api.call('POST', '/v1/events', {
        events: [{ eventId: 'e1', userId: 'u1', itemId: 'i1', labels: { click: 1 } }],
      }),
      uncached: await api.score(['never-seen']),
    };
    for (const response of Object.values(down)) {
      expect(response).toEqual({ status: 503, body: expect.objectContaining({ message: 'database unavailable' }) });
    }
    expect(await api.call('GET', '/health/ready')).toEqual({
      status: 503,
      body: expect.objectContaining({ checks: expect.objectContaining({ postgres: 'down' }) }),
    });
    await load.atLeast(50);
    const duringOutage = load.statuses.length - stoppedAt;

    await postgres.start();
    const restarted = performance.now();
    while ((await api.call('GET', '/admin/models')).status !== 200) await pause(50);
    const recoverySeconds = (performance.now() - restarted) / 1000;
    expect((await api.call('PUT', '/v1/items/i0/features', { features: tinyItem(0) })).status).toBe(200);
    expect((await api.score(['never-seen'])).status).toBe(200);
    await load.stop();

    const failed = load.statuses.filter((s) => s !== 200).length;
    process.stdout.write(
      `postgres outage: ${load.statuses.length} score requests (${duringOutage} while Postgres was down), ` +
        `${failed} failed; admin API back ${recoverySeconds.toFixed(2)} s after Postgres restarted\n`,
    );
    expect(failed).toBe(0);
    expect(recoverySeconds).toBeLessThan(15);
  }, 120_000);

  it('answers at its deadline a score whose features a hanging Postgres holds back', async () => {
    expect((await api.score()).status).toBe(200); // u1 and its items cached
    await postgres.freeze();
    try {
      const started = performance.now();
      const held = await api.request('POST', '/v1/score', { userId: 'u1', itemIds: ['i0', 'held-back'] }, 10_000, {
        'x-request-deadline-ms': '300',
      });
      const ms = performance.now() - started;
      // Dropped at the request's deadline (504, as one whose deadline passes before inference), not when TCP gives up.
      expect(held.status).toBe(504);
      expect(ms).toBeGreaterThanOrEqual(300);
      expect(ms).toBeLessThan(3_000);
      // What Redis holds is scored meanwhile.
      expect((await api.score()).status).toBe(200);
    } finally {
      await postgres.thaw();
    }
    expect((await api.score(['i0', 'held-back'])).status).toBe(200);
  }, 60_000);
});
