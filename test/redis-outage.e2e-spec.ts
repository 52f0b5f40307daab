import { createServer, type Socket } from 'node:net';

import { startApi } from './fixtures/app.process';
import { freePort } from './fixtures/free-port';
import { metricsOf } from './fixtures/metrics.fixture';
import { tinyArtifact } from './fixtures/model.fixture';
import { keepSending, pause, seedProduction, startServingApi, type ServingApi } from './fixtures/outage.fixture';
import { startRedisServer, type RedisServer } from './fixtures/store.servers';

/** Far above the API's deadline for a route that needs Redis (5 s): an answer later than this is a hang. */
const HANG_MS = 15_000;

// The API on a redis-server of its own, SIGKILLed under scoring load and started again: scoring keeps answering 200
// from Postgres, the routes that need Redis answer 503, and the cache is back by itself soon after Redis is.
describe('Redis outage (e2e)', () => {
  let redis: RedisServer;
  let api: ServingApi;

  const cacheHits = async () =>
    Number(/^feature_cache_hits_total (\S+)$/m.exec(String((await api.call('GET', '/metrics')).body.text))?.[1]);

  beforeAll(async () => {
    redis = await startRedisServer();
    await seedProduction(process.env.DATABASE_URL!);
    api = await startServingApi({ REDIS_URL: redis.url });
  }, 180_000);

  afterAll(async () => {
    await api?.process.stop();
    await redis?.destroy();
  });

  it('scores through the outage, answers 503 where Redis is needed, and refills the cache within 2 s', async () => {
    await api.score();
    const warm = await cacheHits();
    expect((await api.score()).status).toBe(200);
    expect(await cacheHits()).toBeGreaterThan(warm);
    // The stores' state under the names a cluster and a replica have it: one master, its breaker closed, no replica.
    const node = `{node="${new URL(redis.url).host}"}`;
    const breaker = async () => (await metricsOf(api)).series('feature_cache_breaker_open');
    const metrics = await metricsOf(api);
    expect(metrics.series('redis_nodes')).toEqual({ '{role="master"}': 1, '{role="replica"}': 0 });
    expect(metrics.series('feature_cache_breaker_open')).toEqual({ [node]: 0 });
    expect(metrics.get('read_replica_in_use')).toBe(0);
    expect(metrics.has('read_replica_lag_seconds')).toBe(false);
    expect(Object.keys(metrics.series('read_replica_fallbacks_total'))).toHaveLength(3);
    const load = keepSending(() => api.score());

    await redis.kill();
    const killedAt = load.statuses.length;
    const down = {
      job: await api.call('POST', '/admin/training-jobs', { source: { kind: 'csv', path: '/nowhere.csv' } }),
      schedule: await api.call('GET', '/admin/training-schedule'),
      board: await api.call('GET', '/admin/queues'),
    };
    for (const response of Object.values(down)) {
      expect(response).toEqual({ status: 503, body: expect.objectContaining({ message: 'redis unavailable' }) });
    }
    expect(await api.call('GET', '/health/ready')).toEqual({
      status: 200,
      body: { status: 'degraded', checks: { postgres: 'up', redis: 'down', model: 'up' } },
    });
    await load.atLeast(50);
    const duringOutage = load.statuses.length - killedAt;
    // Open for a second after each failure, tried again by the next request: seen open within a few scrapes.
    let scrapes = 0;
    while ((await breaker())[node] !== 1) {
      if (++scrapes > 50) throw new Error('the breaker was not seen open while Redis was down');
      await pause(20);
    }

    await redis.start();
    const restarted = performance.now();
    const hitsAtRestart = await cacheHits();
    while ((await cacheHits()) === hitsAtRestart) await pause(20);
    const cacheBackSeconds = (performance.now() - restarted) / 1000;
    await load.stop();
    while ((await api.call('GET', '/health/ready')).body.status !== 'ok') await pause(50);
    while ((await breaker())[node] !== 0) await pause(50);
    expect((await api.call('GET', '/admin/training-schedule')).status).toBe(200);

    const failed = load.statuses.filter((s) => s !== 200).length;
    process.stdout.write(
      `redis outage: ${load.statuses.length} score requests (${duringOutage} while Redis was down), ${failed} failed; ` +
        `cache hits again ${cacheBackSeconds.toFixed(2)} s after Redis restarted\n`,
    );
    expect(failed).toBe(0);
    expect(cacheBackSeconds).toBeLessThan(2);
    // Each connection's outage is logged once through the JSON logger, never as raw ioredis error lines.
    const output = api.process.output();
    expect(output).not.toContain('[ioredis] Unhandled error event');
    expect(output.match(/connection \\?"feature-cache\\?" unavailable/g)).toHaveLength(1);
    expect(output).toMatch(/connection \\?"feature-cache\\?" is back/);
  }, 120_000);

  it('answers or refuses every admin route in time while Redis does not answer, and after it restarts', async () => {
    const [production] = (await (await api.request('GET', '/admin/models')).json()) as { id: number }[];
    const { artifact } = await tinyArtifact(7);
    const candidate = (await api.call('POST', '/admin/models', { artifact: artifact.toString('base64') })).body.id;
    const routes: [string, string, object?][] = [
      ['GET', '/admin/models'],
      ['GET', `/admin/models/${production.id}`],
      ['GET', `/admin/models/${production.id}/live-metrics?window=1h`],
      ['GET', '/admin/rollouts'],
      ['GET', '/admin/training-jobs'],
      ['GET', '/admin/training-jobs/nonesuch'],
      ['GET', '/admin/training-schedule'],
      ['PUT', '/admin/training-schedule', { cron: '0 3 * * *' }],
      ['GET', '/admin/queues/api/queues'],
      // A transition: committed in Postgres, then models:changed published on Redis.
      ['POST', `/admin/models/${candidate}/archive`],
    ];
    /** Each route with its status, 0 for no answer within HANG_MS; a 503 must say when to retry. */
    const sweep = () =>
      Promise.all(
        routes.map(async ([method, path, body]) => {
          const response = await api.request(method, path, body, HANG_MS).catch(() => undefined);
          const status = response?.status ?? 0;
          if (status === 503) expect(response!.headers.get('retry-after')).toBe('1');
          return `${method} ${path} ${status}`;
        }),
      );
    // An answer is the route's own (a 404, the 409 of archiving twice …) or a 503; not silence, not another 5xx.
    const unanswered = (sweeps: string[][]) => sweeps.flat().filter((s) => !/ ([1-4]\d\d|503)$/.test(s));

    // Frozen: connections stay up, commands get no answer.
    redis.freeze();
    const frozen = await sweep().finally(() => redis.thaw());
    await redis.kill();
    const down = await sweep().finally(() => redis.start());
    const restarted = performance.now();
    const after: string[][] = [];
    // Bounded by time, not by sweeps: a 503 sweep takes milliseconds, and the queue's connections come back on their
    // own reconnect schedule (a fresh-clone run saw 50 sweeps end before they did; usually 0.1 s).
    for (;;) {
      after.push(await sweep());
      if (!after.at(-1)!.some((s) => s.endsWith(' 503')) || performance.now() - restarted > 10_000) break;
      await pause(50);
    }
    const allBackSeconds = (performance.now() - restarted) / 1000;

    expect(unanswered([frozen, down, ...after])).toEqual([]);
    expect(after.at(-1)!.filter((s) => s.endsWith(' 503'))).toEqual([]);
    process.stdout.write(
      `admin routes while Redis was frozen: ${frozen.join(', ')}; every route answering again ` +
        `${allBackSeconds.toFixed(2)} s after Redis restarted (${after.length} sweeps)\n`,
    );
  }, 120_000);
});

// A Redis that takes connections and never answers (a frozen process, a proxy with nothing behind it) at boot.
describe('Redis silent at boot (e2e)', () => {
  it('starts within seconds and serves, degraded, rather than wait for it', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
    try {
      await seedProduction(process.env.DATABASE_URL!);
      const apiPort = await freePort();
      const started = performance.now();
      // Before the fix the boot waited on its repeatable jobs' registration: no "listening on" in 400 s.
      const api = await startApi(
        { REDIS_URL: `redis://127.0.0.1:${port}/0`, API_PORT: String(apiPort), API_HOST: '127.0.0.1' },
        30_000,
      );
      try {
        expect(performance.now() - started).toBeLessThan(30_000);
        expect((await fetch(`http://127.0.0.1:${apiPort}/health/live`)).status).toBe(200);
        const ready = await fetch(`http://127.0.0.1:${apiPort}/health/ready`, { signal: AbortSignal.timeout(HANG_MS) });
        expect(await ready.json()).toMatchObject({
          status: 'degraded',
          checks: { redis: expect.not.stringMatching(/^up$/) },
        });
      } finally {
        await api.stop('SIGKILL');
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 60_000);
});
