import { keepSending, pause, seedProduction, startServingApi, type ServingApi } from './fixtures/outage.fixture';
import { startPostgresServer, startRedisServer, type PostgresServer, type RedisServer } from './fixtures/store.servers';

const ITEM_TTL_SECONDS = 1;

// The API on a Redis and a Postgres of its own, under scoring load, through fault 4 of issue 23: Redis restarted
// empty, then Postgres stopped for longer than the item rows' TTL; then, Postgres still down, Redis restarted empty
// again, so that neither store holds anything. The rows this process read before score every request, past their TTL.
describe('Redis and Postgres down together (e2e)', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  let api: ServingApi;

  const metric = async (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(String((await api.call('GET', '/metrics')).body.text))?.[1]);

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgresServer(), startRedisServer()]);
    await seedProduction(postgres.url, true);
    api = await startServingApi({
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      ITEM_ROW_CACHE_TTL_SECONDS: String(ITEM_TTL_SECONDS),
    });
  }, 180_000);

  afterAll(async () => {
    await api?.process.stop();
    await Promise.all([postgres?.destroy(), redis?.destroy()]);
  });

  it('scores every request from the rows in memory, stale rows counted, and the stores take over again', async () => {
    expect((await api.score()).status).toBe(200);
    const load = keepSending(() => api.score());

    await redis.kill();
    await redis.start();
    await load.atLeast(30);
    await postgres.stop();
    const stoppedAt = load.statuses.length;
    await pause(2 * ITEM_TTL_SECONDS * 1000);
    await load.atLeast(30);

    // Postgres still down: Redis restarted empty again, and every row the items and the user need is past its TTL.
    await redis.kill();
    await redis.start();
    await pause(2 * ITEM_TTL_SECONDS * 1000);
    await load.atLeast(30);
    const staleItems = await metric('item_row_cache_stale_hits_total');
    const staleUsers = await metric('user_row_fallback_hits_total');
    // What it never read still needs a store.
    expect((await api.score(['never-seen'])).status).toBe(503);

    await postgres.start();
    const during = load.statuses.length - stoppedAt;
    while ((await api.call('GET', '/admin/models')).status !== 200) await pause(50);
    await load.atLeast(30);
    await load.stop();
    expect(await metric('item_row_cache_stale_hits_total')).toBeGreaterThanOrEqual(staleItems);

    const failed = load.statuses.filter((s) => s !== 200).length;
    process.stdout.write(
      `double fault: ${load.statuses.length} score requests (${during} while Postgres was down), ${failed} failed; ` +
        `${staleItems} candidates and ${staleUsers} users scored from stale rows\n`,
    );
    expect(failed).toBe(0);
    expect(staleItems).toBeGreaterThan(0);
    expect(staleUsers).toBeGreaterThan(0);
  }, 120_000);
});
