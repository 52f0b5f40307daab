import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import calculateSlot from 'cluster-key-slot';
import Redis, { type Cluster } from 'ioredis';

import { APP_CONFIG, ConfigModule, loadConfig } from '@app/config';
import type { FeatureMap } from '@app/db';
import { CACHE_REDIS, RedisConnections, RedisModule } from '@app/redis';

import {
  entryKey,
  FeatureCacheRepository,
  generationKey,
  type EntityRef,
} from '../apps/api/src/features/feature-cache.repository';
import { FEATURES_CHANGED_CHANNEL } from '../apps/api/src/features/feature-change.repository';
import { startApi, startWorker, type AppProcess } from './fixtures/app.process';
import { freePort } from './fixtures/free-port';
import { metricsOf } from './fixtures/metrics.fixture';
import { TINY_SPEC, tinyInteractions, tinyItem } from './fixtures/model.fixture';
import { keepSending, pause, seedProduction, startServingApi, type ServingApi } from './fixtures/outage.fixture';
import { propagated } from './fixtures/propagation.fixture';
import { startRedisCluster, type RedisClusterServers } from './fixtures/store.servers';

/** A series of a process's /metrics (the first one of that name when labelled). */
async function metric(api: ServingApi, series: string): Promise<number> {
  const text = String((await api.call('GET', '/metrics')).body.text);
  return Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
}

/** Each item's task scores for u1. */
async function itemScores(api: ServingApi, itemIds: string[]): Promise<Record<string, unknown>> {
  const { status, body } = await api.score(itemIds);
  expect(status).toBe(200);
  return Object.fromEntries((body.items as { itemId: string; scores: unknown }[]).map((i) => [i.itemId, i.scores]));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(100);
  }
}

/** Every node's requirepass and masterauth: every connection of the service must authenticate. */
const PASSWORD = 'cluster-e2e-secret';

/** The output of an app that exited while booting; fails the test if it started. */
async function bootFailure(start: Promise<AppProcess>): Promise<string> {
  let app: AppProcess;
  try {
    app = await start;
  } catch (error) {
    return (error as Error).message;
  }
  await app.stop();
  throw new Error('the process started');
}

// Every Redis use on a real Redis Cluster of this file's own (three masters with a replica each, a password on every
// node), started once.
describe('Redis Cluster (e2e)', () => {
  let cluster: RedisClusterServers;

  beforeAll(async () => {
    cluster = await startRedisCluster({ password: PASSWORD });
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  describe('the feature cache on the cluster', () => {
    let moduleRef: TestingModule;
    let cache: FeatureCacheRepository;
    let client: Cluster;
    const items = Array.from({ length: 500 }, (_, i): EntityRef => ({ kind: 'item', id: `c-${i}` }));

    beforeAll(async () => {
      moduleRef = await Test.createTestingModule({
        imports: [ConfigModule, RedisModule],
        providers: [FeatureCacheRepository],
      })
        .overrideProvider(APP_CONFIG)
        .useValue(loadConfig({ ...process.env, REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: PASSWORD }))
        .setLogger(false as never)
        .compile();
      await moduleRef.init();
      cache = moduleRef.get(FeatureCacheRepository);
      client = moduleRef.get(CACHE_REDIS);
    });

    afterAll(() => moduleRef?.close());

    /** Reads `entities` under `schemaVersion`, and fills each one's entry with `features(its index)`. */
    async function readAndFill(schemaVersion: string, entities: EntityRef[], features: (i: number) => FeatureMap) {
      const misses = await cache.read(schemaVersion, entities);
      await cache.fill(
        schemaVersion,
        entities.map((entity, i) => ({
          entity,
          generation: (misses[i] as { generation: string }).generation,
          features: features(i),
        })),
      );
    }

    it('reads 500 entities in one pipeline per master, fills, hits, and invalidates across slots', async () => {
      const pipelines = jest.spyOn(client, 'pipeline');
      const misses = await cache.read('s1', items);
      expect(pipelines).toHaveBeenCalledTimes(3);
      pipelines.mockRestore();
      expect(misses.every((lookup) => !lookup.hit && !lookup.unavailable)).toBe(true);

      await cache.fill(
        's1',
        items.map((entity, i) => ({
          entity,
          generation: (misses[i] as { generation: string }).generation,
          features: i % 50 ? { price: i } : null, // absences are capped at 50 a request
        })),
      );
      const hits = await cache.read('s1', items);
      expect(hits).toEqual(items.map((_, i) => ({ hit: true, features: i % 50 ? { price: i } : null })));

      await cache.invalidate(
        'item',
        items.slice(0, 250).map(({ id }) => id),
      );
      const after = await cache.read('s1', items);
      expect(after.map((lookup) => lookup.hit)).toEqual(items.map((_, i) => i >= 250));
    });

    it('follows a failover it learns of by a redirection: the next read hits, an invalidation goes through', async () => {
      const entities: EntityRef[] = [{ kind: 'user', id: 'u1' }, ...items.slice(0, 30)];
      await readAndFill('s3', entities, (i) => ({ n: i }));
      await cluster.failOver(await cluster.masterOf(generationKey({ kind: 'user', id: 'u1' })));

      // Both clients' slot maps still name the old master: the invalidation is redirected and goes through, the first
      // read may be redirected (its entities are misses), the next one hits the user and misses the invalidated items.
      await cache.invalidate(
        'item',
        items.slice(0, 30).map(({ id }) => id),
      );
      await cache.read('s3', entities);
      expect((await cache.read('s3', entities)).map((lookup) => lookup.hit)).toEqual(entities.map((_, i) => i === 0));
    });

    it("sets an entity's generation on the importing node while its slot is migrated (ASK), read once it is moved", async () => {
      const moving: EntityRef = { kind: 'item', id: 'moving-1' };
      const key = generationKey(moving);
      const migration = await cluster.migrate(key);
      const target = new Redis({ port: migration.to, host: '127.0.0.1', password: PASSWORD, lazyConnect: true });
      try {
        // The slot stays migrating for as long as this test wants: running the invalidation again would get ASK each time.
        await cache.invalidate('item', [moving.id, ...items.slice(40, 60).map(({ id }) => id)]);
        await target.connect();
        const [, [error, generation]] = (await target.pipeline().asking().get(key).exec())!;
        expect(error).toBeNull();
        expect(generation).toEqual(expect.any(String));
        await migration.finish();
        expect(await cache.read('s4', [moving])).toEqual([{ hit: false, generation, unavailable: false }]);
      } finally {
        target.disconnect();
      }
    });

    it('reads and fills while a slot is migrated, its keys split between the two nodes, with no node read from Postgres', async () => {
      // An item and the others of its slot, and items of other slots, some on the same master.
      const slotOf = (entity: EntityRef) => calculateSlot(generationKey(entity));
      const moving = items[0];
      const entities = [
        ...items.filter((entity) => slotOf(entity) === slotOf(moving)),
        ...items.slice(300, 360).filter((entity) => slotOf(entity) !== slotOf(moving)),
      ];
      await readAndFill('s5', entities, (i) => ({ n: i }));
      const cached = entities.map((_, i) => ({ hit: true, features: { n: i } }));
      const migration = await cluster.migrate(generationKey(moving));
      try {
        // One entity's generation moved, its entry and the slot's other keys not yet: the slot's MGET is TRYAGAIN.
        await migration.move([generationKey(moving)]);
        expect(await cache.read('s5', entities)).toEqual(cached);
        // Every key of the slot read moved: ASK, and the node's pipeline, sent whole to the importing node, MOVED there.
        const slotKeys = entities
          .filter((entity) => slotOf(entity) === slotOf(moving))
          .flatMap((entity) => [entryKey('s5', entity), generationKey(entity)]);
        await migration.move(slotKeys.filter((key) => key !== generationKey(moving)));
        expect(await cache.read('s5', entities)).toEqual(cached);
        // A new entry of the slot is answered ASK by the source: it is set on the importing node, and read there.
        await readAndFill('s6', entities, (i) => ({ m: i }));
        expect(await cache.read('s6', entities)).toEqual(entities.map((_, i) => ({ hit: true, features: { m: i } })));
        expect(cache.nodes().filter(({ open }) => open)).toEqual([]);
      } finally {
        await migration.finish();
      }
    });

    it("moves a subscription to its channel's new master after a failover, and loses no notice on the way", async () => {
      const connections = moduleRef.get(RedisConnections);
      const channel = 'e2e:moving';
      const received = new Set<string>();
      let resubscribed = 0;
      await connections.subscribe('e2e-mover', channel, {
        message: (message) => received.add(message),
        resubscribed: () => resubscribed++,
      });
      /** The nodes that hold the subscription. */
      const holders = async () => {
        const ports: number[] = [];
        for (const { port } of cluster.servers) {
          const node = new Redis({ port, password: PASSWORD });
          if (String(await node.client('LIST')).includes(' name=e2e-mover ')) ports.push(port);
          node.disconnect();
        }
        return ports;
      };
      const owner = await cluster.masterOf(channel);
      expect(await holders()).toEqual([owner]);

      // The old master stays up as a replica, with the connection: only the refreshed slot map tells it has moved.
      let sent = 0;
      let sending = true;
      const publishing = (async () => {
        while (sending) {
          await connections.publish(channel, String(sent++));
          await pause(20);
        }
      })();
      // TAKEOVER: the masters just voted in the file's first failover, and may not vote again so soon for this shard
      // (a plain CLUSTER FAILOVER then never happened in one run in two); then only the subscription is waited for.
      const master = new Redis({ port: owner, password: PASSWORD });
      const promoted = Number(/^slave0:.*port=(\d+)/m.exec(await master.info('replication'))?.[1]);
      master.disconnect();
      const node = new Redis({ port: promoted, password: PASSWORD });
      await node.cluster('FAILOVER', 'TAKEOVER');
      node.disconnect();
      await until('the subscription on the promoted master', async () =>
        (await holders()).join() === String(promoted) ? true : undefined,
      );
      sending = false;
      await publishing;
      await cluster.waitUntilOk();
      await until('every notice', async () => (received.size === sent ? true : undefined), 2000);
      expect(sent).toBeGreaterThan(50);
      expect(resubscribed).toBe(0); // not dropped: nothing was missed that a holder of rows must make up for
    });

    it("keeps an entity's entries and its generation in one slot, and spreads entities evenly over the masters", async () => {
      const entity: EntityRef = { kind: 'item', id: 'c-7' };
      const keys = [entryKey('s1', entity), entryKey('s2', entity), generationKey(entity)];
      expect(new Set(await Promise.all(keys.map((key) => client.cluster('KEYSLOT', key)))).size).toBe(1);
      const masters = await Promise.all(items.map((item) => cluster.masterOf(generationKey(item))));
      const shares = [...new Set(masters)].map((master) => masters.filter((m) => m === master).length / items.length);
      expect(shares).toHaveLength(3);
      for (const share of shares) expect(share).toBeCloseTo(1 / 3, 1);
    });

    describe('with a node that takes connections and never answers', () => {
      const channel = 'e2e:stalled';
      const sockets = new Set<Socket>();
      /**
       * The node's port each connection from now on is forwarded to; none: taken and never answered, as by a frozen
       * process or a proxy with nothing behind it. A node announcing this server's port is reached through it.
       */
      let forwardTo: number | undefined;
      const proxy = createServer((socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        if (forwardTo === undefined) return;
        const upstream = connect(forwardTo, '127.0.0.1');
        const close = () => [socket, upstream].forEach((end) => end.destroy());
        for (const end of [socket, upstream]) end.once('close', close).on('error', close);
        socket.pipe(upstream).pipe(socket);
      });
      let proxyPort: number;
      let promoted: number;
      // Connections of their own: what is counted here is this subscription's.
      let ownModule: TestingModule;
      let connections: RedisConnections;
      const heard = { messages: new Set<string>(), dropped: 0, resubscribed: 0 };

      /** The nodes whose client connections named `name`. */
      const holders = async (name: string) => {
        const ports: number[] = [];
        for (const { port } of cluster.servers) {
          const node = new Redis({ port, password: PASSWORD });
          if (String(await node.client('LIST')).includes(` name=${name} `)) ports.push(port);
          node.disconnect();
        }
        return ports;
      };
      const timeoutsBeyond = (before: number, count: number) => () =>
        Promise.resolve(connections.subscribeTimeouts >= before + count ? true : undefined);

      beforeAll(async () => {
        await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
        proxyPort = (proxy.address() as AddressInfo).port;
        ownModule = await Test.createTestingModule({ imports: [ConfigModule, RedisModule] })
          .overrideProvider(APP_CONFIG)
          .useValue(
            loadConfig({ ...process.env, REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: PASSWORD }),
          )
          .setLogger(false as never)
          .compile();
        await ownModule.init();
        connections = ownModule.get(RedisConnections);
        await connections.subscribe('e2e-stalled', channel, {
          message: (message) => heard.messages.add(message),
          dropped: () => heard.dropped++,
          resubscribed: () => heard.resubscribed++,
        });
      });

      afterAll(async () => {
        // Forwarded meanwhile: whoever still has the announced port in its slot map reaches the node.
        forwardTo = promoted;
        if (promoted) await cluster.announce(promoted, 0);
        await ownModule?.close();
        for (const socket of sockets) socket.destroy();
        proxy.close();
      });

      it('gives up a move to a new master that never answers SUBSCRIBE, keeps the old one, and moves once it can', async () => {
        const owner = await cluster.masterOf(channel);
        const node = new Redis({ port: owner, password: PASSWORD });
        promoted = Number(/^slave0:.*port=(\d+)/m.exec(await node.info('replication'))?.[1]);
        node.disconnect();
        expect(await holders('e2e-stalled')).toEqual([owner]);
        const timeoutsBefore = connections.subscribeTimeouts;

        // The slot's new master announces the proxy, which holds every connection unanswered.
        await cluster.announce(promoted, proxyPort);
        const replica = new Redis({ port: promoted, password: PASSWORD });
        await replica.cluster('FAILOVER', 'TAKEOVER');
        replica.disconnect();
        await until('a move given up', timeoutsBeyond(timeoutsBefore, 1), 60_000);
        // Still subscribed where it was, and hearing (a PUBLISH anywhere reaches every node over the bus).
        const old = new Redis({ port: owner, password: PASSWORD });
        await old.publish(channel, 'while stalled');
        old.disconnect();
        await until('the notice on the old subscription', async () =>
          heard.messages.has('while stalled') ? true : undefined,
        );
        expect(await holders('e2e-stalled')).toEqual([owner]);

        // The new master answers through the proxy from now on: a later try moves there. Unbounded, the first try
        // would wait on its unanswered connection forever.
        forwardTo = promoted;
        await until(
          'the subscription on the promoted master',
          async () => ((await holders('e2e-stalled')).join() === String(promoted) ? true : undefined),
          60_000,
        );
        expect(heard).toMatchObject({ dropped: 0, resubscribed: 0 });
      }, 150_000);

      it('reports a drop, and comes back once the master it reconnects to answers, trying again meanwhile', async () => {
        expect(await holders('e2e-stalled')).toEqual([promoted]);
        forwardTo = undefined;
        const timeoutsBefore = connections.subscribeTimeouts;

        const node = new Redis({ port: promoted, password: PASSWORD });
        const id = /^id=(\d+) .* name=e2e-stalled /m.exec(String(await node.client('LIST')))?.[1];
        expect(id).toBeDefined();
        await node.client('KILL', 'ID', id!);
        node.disconnect();
        await until('the drop', async () => (heard.dropped === 1 ? true : undefined));
        await until('two reconnections given up', timeoutsBeyond(timeoutsBefore, 2));
        expect(heard.resubscribed).toBe(0);

        forwardTo = promoted;
        await until('the subscription back', async () => (heard.resubscribed === 1 ? true : undefined));
        expect(await holders('e2e-stalled')).toEqual([promoted]);
        expect(heard.dropped).toBe(1);
      }, 90_000);
    });
  });

  describe('two API processes and a worker on the cluster', () => {
    let a: ServingApi;
    let b: ServingApi;
    let worker: AppProcess;

    beforeAll(async () => {
      await seedProduction(process.env.DATABASE_URL!);
      const env = { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: PASSWORD, MODEL_POLL_SECONDS: '3600' };
      // A reads every entity through the cluster at every request; B keeps candidate rows in memory as well.
      [a, b, worker] = await Promise.all([
        startServingApi({ ...env, ITEM_ROW_CACHE_ENTRIES: '0' }),
        startServingApi(env),
        startWorker({ ...env, AUTO_CANARY: 'false' }),
      ]);
    }, 120_000);

    afterAll(async () => {
      await Promise.all([a?.process, b?.process, worker].map((app) => app?.stop()));
    });

    it("scores on both, and a feature write through one reaches the other's scores within the bound", async () => {
      for (const api of [a, b]) {
        expect((await api.score()).status).toBe(200);
        expect((await api.score()).status).toBe(200);
        expect(await metric(api, 'feature_cache_hits_total')).toBeGreaterThan(0);
      }
      expect(await metric(a, 'feature_cache_hits_total')).toBeGreaterThanOrEqual(11);
      // The cluster's state, under the names one Redis has them: three masters, each read from (breaker closed).
      const metrics = await metricsOf(a);
      expect(metrics.series('redis_nodes')).toEqual({ '{role="master"}': 3, '{role="replica"}': 3 });
      expect(metrics.series('feature_cache_breaker_open')).toEqual(
        Object.fromEntries((await cluster.masters()).map((port) => [`{node="127.0.0.1:${port}"}`, 0])),
      );
      const before = await itemScores(b, ['i0', 'i1']);
      expect(await itemScores(b, ['i0', 'i1'])).toEqual(before);
      expect(await metric(b, 'item_row_cache_hits_total')).toBeGreaterThanOrEqual(2);

      // Through A: Postgres, the generation in the cluster, then `features:changed` to B, which drops its row of i0:
      // B scores with the write within the bound a user can rely on.
      expect((await a.call('PUT', '/v1/items/i0/features', { features: tinyItem(3) })).status).toBe(200);
      const after = await propagated('cluster: a write through A on B', before, () => itemScores(b, ['i0', 'i1']));
      expect(after.i0).not.toEqual(before.i0);
      expect(after.i1).toEqual(before.i1);
      expect((await a.call('PUT', '/v1/items/i0/features', { features: tinyItem(0) })).status).toBe(200);
      expect(
        await propagated('cluster: a write back through A on B', after, () => itemScores(b, ['i0', 'i1'])),
      ).toEqual(before);
    });

    it('runs a training job through the queue, and a transition made on one process reaches the other', async () => {
      const path = join(mkdtempSync(join(tmpdir(), 'cluster-e2e-')), 'log.csv');
      const rows = tinyInteractions(600, 5);
      const columns = Object.keys(rows[0]);
      const cell = (v: unknown) => (Array.isArray(v) ? v.join('|') : String(v));
      writeFileSync(path, [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\n'));

      const queued = await a.call('POST', '/admin/training-jobs', {
        source: { kind: 'csv', path },
        spec: TINY_SPEC,
        overrides: { epochs: 2 },
        holdoutFraction: 0.25,
      });
      expect(queued.status).toBe(201);
      const job = await until(
        'the training job to finish',
        async () => {
          const { body } = await b.call('GET', `/admin/training-jobs/${String(queued.body.id)}`);
          return body.state === 'completed' || body.state === 'failed' ? body : undefined;
        },
        90_000,
      );
      const { state, failedReason, result } = job as { state: string; failedReason: string; result?: object };
      expect({ state, failedReason, result }).toMatchObject({
        state: 'completed',
        failedReason: null,
        result: { decision: 'candidate' },
      });
      const versionId = (job.result as { versionId: number }).versionId;

      // `models:changed` through the cluster: B loads the canary made through A (its poll is an hour away).
      expect((await a.call('POST', `/admin/models/${versionId}/canary`, { percent: 10 })).status).toBe(200);
      // In fp32: TINY_SPEC's regression task keeps a trained version out of int8 (INT8_SERVING=auto).
      const served = `served_model_version{role="canary",version="${versionId}",precision="fp32"}`;
      await until('B to serve the canary', async () => ((await metric(b, served)) === 1 ? true : undefined));
    }, 120_000);

    it("changes the retraining schedule through one process under the cluster's lock; the other reads it", async () => {
      const set = await a.call('PUT', '/admin/training-schedule', { cron: '*/30 * * * *', windowDays: 2 });
      expect(set).toMatchObject({ status: 200, body: { cron: '*/30 * * * *', windowDays: 2 } });
      // Bull's repeatable job, registered under the lock on the {mmoe} slot, is what B reads the next run from.
      const read = await b.call('GET', '/admin/training-schedule');
      expect(read.body).toMatchObject({ cron: '*/30 * * * *', windowDays: 2, nextRunAt: set.body.nextRunAt });
    });

    it('keeps scoring through a master SIGKILL: 0 failed, its keys from Postgres until the replica takes over', async () => {
      const victim = await cluster.masterOf(generationKey({ kind: 'user', id: 'u1' })); // read by every score request
      const survivors = cluster.servers.filter(({ port }) => port !== victim);
      // Both processes' degraded requests; notes whether either showed the victim's breaker open.
      let breakerOpened = false;
      const degraded = async () => {
        const scrapes = await Promise.all([a, b].map(metricsOf));
        breakerOpened ||= scrapes.some(
          (metrics) => metrics.series('feature_cache_breaker_open')[`{node="127.0.0.1:${victim}"}`] === 1,
        );
        return scrapes.reduce((sum, metrics) => sum + metrics.get('feature_cache_degraded_requests_total')!, 0);
      };
      const loads = [keepSending(() => a.score()), keepSending(() => b.score())];
      await Promise.all(loads.map((load) => load.atLeast(20)));
      const count = () => loads[0].statuses.length + loads[1].statuses.length;
      const degradedBefore = await degraded();

      const killedAt = performance.now();
      const requestsAtKill = count();
      await cluster.servers.find(({ port }) => port === victim)!.kill();
      let promotedAt = 0;
      const promoted = cluster.waitUntilOk().then(() => (promotedAt = performance.now()));
      // Cache hits are back once the degraded count stays put while both processes answer another 40 requests.
      let last = { value: await degraded(), at: performance.now(), requests: count() };
      while (!promotedAt || count() - last.requests < 40) {
        if (performance.now() - killedAt > 60_000) throw new Error('the cache did not answer again within 60 s');
        await pause(20);
        const value = await degraded();
        if (value !== last.value) last = { value, at: performance.now(), requests: count() };
      }
      await promoted;
      await Promise.all(loads.map((load) => load.stop()));

      const statuses = loads.flatMap((load) => load.statuses);
      const failed = statuses.filter((status) => status !== 200).length;
      const fromPostgres = last.value - degradedBefore;
      process.stdout.write(
        `redis cluster failover: ${statuses.length} score requests (${count() - requestsAtKill} after the SIGKILL), ` +
          `${failed} failed; ${fromPostgres} served with the dead master's keys from Postgres; replica promoted ` +
          `${((promotedAt - killedAt) / 1000).toFixed(2)} s and cache hits back ` +
          `${((last.at - killedAt) / 1000).toFixed(2)} s after the SIGKILL\n`,
      );
      expect(failed).toBe(0);
      expect(fromPostgres).toBeGreaterThan(0);
      expect(breakerOpened).toBe(true);
      expect(survivors.length).toBe(5);

      // Nothing else was lost: the queue's keys and the schedule answer, and both processes are ready again.
      for (const api of [a, b]) {
        expect((await api.call('GET', '/admin/training-schedule')).status).toBe(200);
        await until('readiness ok', async () =>
          (await api.call('GET', '/health/ready')).body.status === 'ok' ? true : undefined,
        );
      }
      expect(a.process.output()).not.toContain('[ioredis] Unhandled error event');

      // The metrics follow: the promoted replica is a master, the dead node is gone, every master is read from.
      const masters = await cluster.masters();
      expect(masters).not.toContain(victim);
      const closed = Object.fromEntries(masters.map((port) => [`{node="127.0.0.1:${port}"}`, 0]));
      for (const api of [a, b])
        await until('the metrics to show the promotion', async () => {
          const metrics = await metricsOf(api);
          const nodes = metrics.series('redis_nodes');
          const breakers = metrics.series('feature_cache_breaker_open');
          const settled =
            nodes['{role="master"}'] === 3 &&
            nodes['{role="replica"}'] === 2 &&
            JSON.stringify(breakers) === JSON.stringify(closed);
          return settled ? true : undefined;
        });
    }, 120_000);

    it('refuses to start without the password, or with a wrong one, naming the setting', async () => {
      const env = { REDIS_CLUSTER_NODES: cluster.nodes, MODEL_POLL_SECONDS: '3600' };
      // Told at boot, not after a hang: a process still booting after 60 s is failed with "did not start" instead.
      const [api, worker] = await Promise.all([
        bootFailure(startApi(env)),
        bootFailure(startWorker({ ...env, REDIS_CLUSTER_PASSWORD: 'not-the-password' })),
      ]);
      expect(api).toMatch(/api failed to start: Redis at 127\.0\.0\.1:\d+ refused the connection \(NOAUTH /);
      expect(api).toMatch(/check REDIS_CLUSTER_PASSWORD/);
      expect(worker).toMatch(/worker failed to start: Redis at 127\.0\.0\.1:\d+ refused the connection \(WRONGPASS /);
      expect(worker).toMatch(/check REDIS_CLUSTER_PASSWORD/);
    }, 60_000);
  });
});

// The same service on a cluster that speaks TLS only (client port, bus, replication), with a CA of its own.
describe('Redis Cluster over TLS (e2e)', () => {
  let cluster: RedisClusterServers;
  let api: ServingApi;

  beforeAll(async () => {
    cluster = await startRedisCluster({ password: PASSWORD, tls: true });
    await seedProduction(process.env.DATABASE_URL!);
  }, 60_000);

  afterAll(async () => {
    await api?.process.stop();
    await cluster?.destroy();
  });

  const tlsEnv = () => ({
    REDIS_CLUSTER_NODES: cluster.nodes,
    REDIS_CLUSTER_PASSWORD: PASSWORD,
    REDIS_CLUSTER_TLS: 'true',
    MODEL_POLL_SECONDS: '3600',
  });

  it('scores from the cache, writes features and reports ready with REDIS_CLUSTER_TLS and the CA', async () => {
    api = await startServingApi({ ...tlsEnv(), NODE_EXTRA_CA_CERTS: cluster.caFile!, ITEM_ROW_CACHE_ENTRIES: '0' });
    expect((await api.score()).status).toBe(200);
    expect((await api.score()).status).toBe(200);
    expect(await metric(api, 'feature_cache_hits_total')).toBeGreaterThanOrEqual(11);
    expect(await metric(api, 'feature_cache_unavailable_total')).toBe(0);
    const before = await itemScores(api, ['i0']);
    expect((await api.call('PUT', '/v1/items/i0/features', { features: tinyItem(3) })).status).toBe(200);
    expect((await itemScores(api, ['i0'])).i0).not.toEqual(before.i0);
    expect(await api.call('GET', '/health/ready')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await api.call('GET', '/admin/training-schedule')).status).toBe(200);
    // Every node, replicas too, once the slot map the process last read names them all (gossip may lag at first).
    await until('every node in the metrics', async () => {
      const nodes = (await metricsOf(api)).series('redis_nodes');
      return nodes['{role="master"}'] === 3 && nodes['{role="replica"}'] === 3 ? true : undefined;
    });
  }, 120_000);

  it('refuses to start when the certificate cannot be verified, or without TLS says which setting to check', async () => {
    const untrusted = await bootFailure(startApi(tlsEnv()));
    expect(untrusted).toMatch(/refused the connection \(self[- ]signed certificate in certificate chain\)/);
    expect(untrusted).toMatch(/check REDIS_CLUSTER_TLS \(a private CA: NODE_EXTRA_CA_CERTS\)/);

    // A plain client gets its connection closed without a word: the process starts, scores from Postgres as with any
    // unreachable Redis, and says which setting to check.
    const plain = await startServingApi({ ...tlsEnv(), REDIS_CLUSTER_TLS: '' });
    try {
      expect(plain.process.output()).toMatch(
        /closed the connection unanswered: if it takes TLS only, set REDIS_CLUSTER_TLS=true/,
      );
      expect((await plain.score()).status).toBe(200);
      expect(await metric(plain, 'feature_cache_degraded_requests_total')).toBe(1);
      expect(await plain.call('GET', '/health/ready')).toMatchObject({
        status: 200,
        body: { status: 'degraded', checks: { redis: 'down' } },
      });
    } finally {
      await plain.process.stop();
    }
  }, 120_000);
});

// A cluster whose nodes announce client ports nothing listens on, as nodes behind a NAT or in containers announce
// addresses the service cannot reach: three masters (a replica would replicate from the announced address).
describe('Redis Cluster behind a NAT (e2e)', () => {
  /** The Redis logger's line for a connection that failed (its quotes escaped in the JSON log). */
  const UNAVAILABLE = /connection \\*"[^"\\]+\\*" unavailable/;
  let cluster: RedisClusterServers;
  /** REDIS_CLUSTER_NAT_MAP: each announced address to the node's own. */
  let natMap: string;

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicas: 0 });
    const pairs: string[] = [];
    for (const { port } of cluster.servers) {
      const announced = await freePort();
      await cluster.announce(port, announced);
      pairs.push(`127.0.0.1:${announced}=127.0.0.1:${port}`);
    }
    natMap = pairs.join(',');
    await seedProduction(process.env.DATABASE_URL!);
  }, 60_000);

  afterAll(() => cluster?.destroy());

  const natEnv = () => ({ REDIS_CLUSTER_NODES: cluster.nodes, MODEL_POLL_SECONDS: '3600' });

  it('runs the cache, the queue and pub/sub through REDIS_CLUSTER_NAT_MAP; reads Postgres without it', async () => {
    const [api, worker] = await Promise.all([
      // Every entity read through the cluster at every request (no item rows in memory).
      startServingApi({ ...natEnv(), REDIS_CLUSTER_NAT_MAP: natMap, ITEM_ROW_CACHE_ENTRIES: '0' }),
      startWorker({ ...natEnv(), REDIS_CLUSTER_NAT_MAP: natMap, AUTO_CANARY: 'false' }),
    ]);
    try {
      expect((await api.score()).status).toBe(200);
      expect((await api.score()).status).toBe(200);
      expect(await metric(api, 'feature_cache_hits_total')).toBeGreaterThanOrEqual(11);
      expect(await metric(api, 'feature_cache_unavailable_total')).toBe(0);
      expect(await api.call('GET', '/health/ready')).toMatchObject({ status: 200, body: { status: 'ok' } });
      // Bull's queues, and the schedule's lock on the {mmoe} slot.
      const set = await api.call('PUT', '/admin/training-schedule', { cron: '*/30 * * * *', windowDays: 2 });
      expect(set).toMatchObject({ status: 200, body: { cron: '*/30 * * * *', windowDays: 2 } });
      // `features:changed` subscribed on its slot's master (as announced: masterOf reads CLUSTER SLOTS), at its own port.
      const announced = await cluster.masterOf(FEATURES_CHANGED_CHANNEL);
      const own = natMap
        .split(',')
        .find((pair) => pair.startsWith(`127.0.0.1:${announced}=`))!
        .split(':')[2];
      const node = new Redis({ port: Number(own) });
      try {
        await until('the subscription on the channel master', async () =>
          String(await node.client('LIST')).includes(' name=features-changed ') ? true : undefined,
        );
      } finally {
        node.disconnect();
      }
      // No connection of either process (the cache, Bull's, the subscription) tried an announced address.
      for (const output of [api.process.output(), worker.output()]) expect(output).not.toMatch(UNAVAILABLE);
    } finally {
      await Promise.all([api.process.stop(), worker.stop()]);
    }

    // The same cluster without the mapping: every node it names refuses, and scoring goes to Postgres.
    const unmapped = await startServingApi({ ...natEnv(), ITEM_ROW_CACHE_ENTRIES: '0' });
    try {
      expect((await unmapped.score()).status).toBe(200);
      expect(await metric(unmapped, 'feature_cache_hits_total')).toBe(0);
      expect(await metric(unmapped, 'feature_cache_degraded_requests_total')).toBeGreaterThanOrEqual(1);
      expect(unmapped.process.output()).toMatch(new RegExp(`${UNAVAILABLE.source} \\(.*ECONNREFUSED`));
    } finally {
      await unmapped.process.stop();
    }
  }, 180_000);
});
