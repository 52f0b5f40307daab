/**
 * npm run bench:stores [-- --quick] [-- --database bench] [-- --redis-db 2]
 *
 * What the two stores sustain on this machine, through the service's own repositories:
 *   1. feature reads (FeatureCacheRepository.read, every entity a hit) of 1 / 10 / 100 / 500 ids per request, against one
 *      Redis (REDIS_URL's server, db --redis-db) and against a Redis Cluster of three masters with a replica each that
 *      the bench starts on this machine: a closed loop with CONCURRENCY requests in flight gives requests/s and ids/s,
 *      then an open loop at half that rate gives p50 / p99 latency from each request's scheduled start;
 *   2. the Postgres writers (database --database): EventRepository.insertNew in batches of EVENT_BATCH and
 *      PredictionLogRepository.insertEncoded in batches of PREDICTION_LOG_BATCH_ROWS (PredictionCopyText's), by 1 and
 *      by WRITERS writers at once.
 * Then what N scoring calls a second with M candidates ask of a Redis node and of the Postgres primary, from those
 * figures. Client and servers share this machine's cores: a store on a host of its own does at least as well.
 */
import { loadavg } from 'node:os';
import { DataSource } from 'typeorm';

import { loadConfig, type AppConfig } from '@app/config';
import {
  dataSourceOptions,
  EventRepository,
  PredictionCopyText,
  PredictionLogRepository,
  type NewEvent,
} from '@app/db';
import { RedisConnections, type RedisClient } from '@app/redis';

import { FeatureCacheRepository, type EntityRef } from '../apps/api/src/features/feature-cache.repository';
import { startRedisCluster } from '../test/fixtures/store.servers';
import { benchStores, prepareStores } from './bench.stores';
import { cpuModel, formatCount, formatMs, hasFlag, log, markdownTable, quantile } from './bench.util';

const ITEMS = 50_000;
const USERS = 5_000;
const ID_COUNTS = [1, 10, 100, 500] as const;
const CONCURRENCY = 16;
const EVENT_BATCH = 1_000;
const WRITERS = 4;
const SCHEMA = 'bench-schema';

interface Plan {
  seconds: number;
}

interface ReadFigures {
  ids: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Reads with an entity the cache could not answer in time (its 500 ms command timeout: the degraded mode). */
  degraded: number;
}

/** A feature vector of the size a real catalogue stores (a dozen features, ~250 bytes of JSON). */
function features(i: number): Record<string, string | number | string[]> {
  return {
    genre: `g${i % 40}`,
    brand: `brand-${i % 500}`,
    price: (i % 1000) / 7,
    rating: (i % 50) / 10,
    age_days: i % 365,
    popularity: (i * 7919) % 10_000,
    category_path: ['root', `c${i % 12}`, `c${i % 12}-${i % 7}`],
    language: i % 3 ? 'en' : 'fr',
    duration: 30 + (i % 600),
    tags: [`t${i % 17}`, `t${i % 23}`],
  };
}

/** One request's entities: a user, then items, `ids` in all. */
function request(ids: number, rng: () => number): EntityRef[] {
  const entities: EntityRef[] = [{ kind: 'user', id: `u${Math.floor(rng() * USERS)}` }];
  for (let k = 1; k < ids; k++) entities.push({ kind: 'item', id: `i${Math.floor(rng() * ITEMS)}` });
  return entities;
}

/** The repository on `config`'s Redis or cluster, filled with every entity (as a scoring miss would fill it). */
async function cacheOn(config: AppConfig): Promise<{ cache: FeatureCacheRepository; close: () => Promise<void> }> {
  const connections = new RedisConnections(config);
  const reads = connections.create('feature-cache', 'fail-fast');
  await new Promise((resolve) => reads.once('ready', resolve));
  const cache = new FeatureCacheRepository(reads as RedisClient, connections.commands, config);
  const all: EntityRef[] = [
    ...Array.from({ length: USERS }, (_, i): EntityRef => ({ kind: 'user', id: `u${i}` })),
    ...Array.from({ length: ITEMS }, (_, i): EntityRef => ({ kind: 'item', id: `i${i}` })),
  ];
  for (let i = 0; i < all.length; i += 1000) {
    const batch = all.slice(i, i + 1000);
    const misses = await cache.read(SCHEMA, batch);
    await cache.fill(
      SCHEMA,
      batch.map((entity, k) => ({
        entity,
        generation: (misses[k] as { generation: string }).generation,
        features: features(i + k),
      })),
    );
  }
  const check = await cache.read(SCHEMA, all.slice(0, 1000));
  if (!check.every((lookup) => lookup.hit)) throw new Error('the filled entries do not read back as hits');
  return { cache, close: () => connections.onApplicationShutdown() };
}

/**
 * Closed loop, then open loop at half its rate. Every entity is cached: a miss can only be the degraded mode (a
 * command past its timeout on an overloaded machine: the breaker then answers at once without Redis), so such reads
 * are counted apart and left out of the rate; a miss for any other reason is an error.
 */
async function measureReads(cache: FeatureCacheRepository, ids: number, plan: Plan): Promise<ReadFigures> {
  let seed = 1;
  const rng = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  let degraded = 0;
  /** Whether every entity came from Redis. */
  const readOnce = async (): Promise<boolean> => {
    const lookups = await cache.read(SCHEMA, request(ids, rng));
    if (lookups.some((lookup) => !lookup.hit && !lookup.unavailable)) throw new Error('a cached entity missed');
    if (lookups.every((lookup) => lookup.hit)) return true;
    degraded++;
    await new Promise((resolve) => setTimeout(resolve, 1)); // no spinning on the breaker's instant answers
    return false;
  };
  for (let i = 0; i < 200; i++) await readOnce();

  let done = 0;
  const end = performance.now() + plan.seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) if (await readOnce()) done++;
    }),
  );
  const requestsPerSecond = done / plan.seconds;

  // Open loop: arrivals on a fixed schedule, latency from the scheduled start (a stall cannot hide its queue).
  const rate = requestsPerSecond / 2;
  const total = Math.max(50, Math.round(rate * plan.seconds));
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  // Each timer tick starts the requests due by then, then yields, so that answers are read between arrivals.
  for (let i = 0; i < total; await new Promise((resolve) => setTimeout(resolve, 1))) {
    for (const now = performance.now(); i < total && start + (i * 1000) / rate <= now; i++) {
      const scheduled = start + (i * 1000) / rate;
      pending.push(readOnce().then((hit) => void (hit && latencies.push(performance.now() - scheduled))));
    }
  }
  await Promise.all(pending);
  return { ids, requestsPerSecond, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), degraded };
}

/** Rows a second that `writers` writers at once sustain, each writing `batch()` after `batch()`. */
async function rowsPerSecond(writers: number, seconds: number, write: () => Promise<number>): Promise<number> {
  let rows = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() < end) {
        // Not `rows += await write()`: that reads `rows` before the await, and concurrent writers would lose counts.
        const written = await write();
        rows += written;
      }
    }),
  );
  return rows / ((performance.now() - started) / 1000);
}

async function measureWriters(config: AppConfig, plan: Plan): Promise<Record<string, Record<number, number>>> {
  const dataSource = await new DataSource({ ...dataSourceOptions(config), poolSize: WRITERS + 2 }).initialize();
  try {
    const events = new EventRepository(dataSource);
    const predictions = new PredictionLogRepository(dataSource);
    await predictions.maintainPartitions(new Date(), 1, new Date(0));
    let next = 0;
    const eventBatch = (): NewEvent[] =>
      Array.from({ length: EVENT_BATCH }, () => {
        const n = next++;
        return {
          eventId: `e${n}`,
          userId: `u${n % USERS}`,
          itemId: `i${n % ITEMS}`,
          labels: { click: n % 2, like: n % 5 === 0 ? 1 : 0, watch_time: n % 300 },
          requestId: `r${Math.floor(n / 10)}`,
          modelVersionId: null,
          context: { surface: 'home' },
          occurredAt: new Date(),
        };
      });
    /** A batch as COPY takes it, encoded a row at a time (the API's writer encodes a response at a time). */
    const predictionBatch = () => {
      const text = new PredictionCopyText();
      for (let row = 0; row < config.PREDICTION_LOG_BATCH_ROWS; row++) {
        const n = next++;
        text.append({
          loggedAt: new Date(),
          requestId: `r${Math.floor(n / 10)}`,
          itemIds: [`i${n % ITEMS}`],
          userId: `u${n % USERS}`,
          versionId: 1,
          role: 'production',
          scores: [[0.1], [0.02], [41.5]],
        });
      }
      return text.contents();
    };
    const figures: Record<string, Record<number, number>> = { events: {}, 'prediction log': {} };
    for (const writers of [1, WRITERS]) {
      log(`  events, ${writers} writer(s) …`);
      figures.events[writers] = await rowsPerSecond(
        writers,
        plan.seconds,
        async () => (await events.insertNew(eventBatch())).stored,
      );
      log(`  prediction log, ${writers} writer(s) …`);
      figures['prediction log'][writers] = await rowsPerSecond(writers, plan.seconds, async () => {
        await predictions.insertEncoded(predictionBatch());
        return config.PREDICTION_LOG_BATCH_ROWS;
      });
    }
    return figures;
  } finally {
    await dataSource.destroy();
  }
}

async function main(): Promise<void> {
  const plan: Plan = { seconds: hasFlag('quick') ? 1.5 : 4 };
  const config = loadConfig();
  const { database, databaseUrl: benchDatabaseUrl, redisUrl: benchRedisUrl } = benchStores(config);
  const loadBefore = loadavg()[0];
  const started = performance.now();
  await prepareStores(config.DATABASE_URL, benchDatabaseUrl, database, benchRedisUrl);

  const reads: Record<string, ReadFigures[]> = {};
  const single = loadConfig({ ...process.env, REDIS_URL: benchRedisUrl, REDIS_CLUSTER_NODES: '' });
  log('starting a Redis Cluster of three masters with a replica each …');
  const cluster = await startRedisCluster();
  try {
    const targets: [string, AppConfig][] = [
      ['one Redis', single],
      ['Redis Cluster, 3 masters', loadConfig({ ...process.env, REDIS_CLUSTER_NODES: cluster.nodes })],
    ];
    for (const [name, target] of targets) {
      log(`${name}: filling ${formatCount(USERS + ITEMS)} entities …`);
      const { cache, close } = await cacheOn(target);
      try {
        reads[name] = [];
        for (const ids of ID_COUNTS) {
          log(`${name}: ${ids} id(s) per request …`);
          reads[name].push(await measureReads(cache, ids, plan));
        }
      } finally {
        await close();
      }
    }
  } finally {
    await cluster.destroy();
  }
  log('Postgres writers …');
  const writes = await measureWriters(loadConfig({ ...process.env, DATABASE_URL: benchDatabaseUrl }), plan);

  const seconds = (performance.now() - started) / 1000;
  const lines = [
    `bench:stores (CPU "${cpuModel()}"; 1-minute load ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} ` +
      `after; ${seconds.toFixed(0)} s; client and servers on this machine)`,
    '',
    `Feature reads (FeatureCacheRepository.read, all hits; ${CONCURRENCY} in flight for requests/s, an open loop at ` +
      'half that rate for the latencies):',
    '',
    markdownTable(
      ['store', 'ids / request', 'requests/s', 'ids/s', 'p50 ms', 'p99 ms', 'vs one Redis (ids/s)', 'degraded reads'],
      Object.entries(reads).flatMap(([name, figures]) =>
        figures.map((f, i) => [
          name,
          String(f.ids),
          formatCount(f.requestsPerSecond),
          formatCount(f.requestsPerSecond * f.ids),
          formatMs(f.p50Ms),
          formatMs(f.p99Ms),
          `${(f.requestsPerSecond / reads['one Redis'][i].requestsPerSecond).toFixed(2)}×`,
          formatCount(f.degraded),
        ]),
      ),
    ),
    '',
    `Postgres writers (rows/s; events in batches of ${formatCount(EVENT_BATCH)}, the prediction log in batches of ` +
      `PREDICTION_LOG_BATCH_ROWS = ${formatCount(config.PREDICTION_LOG_BATCH_ROWS)}):`,
    '',
    markdownTable(
      ['writer', '1 writer', `${WRITERS} writers`],
      Object.entries(writes).map(([name, byWriters]) => [
        name,
        formatCount(byWriters[1]),
        formatCount(byWriters[WRITERS]),
      ]),
    ),
    '',
    sizing(reads['one Redis'], writes, config),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * What N scoring calls a second with M candidates ask: every call reads the user and each candidate not in the
 * process's item-row cache (all of them, at worst) from Redis, in one round trip per node; the prediction log gets
 * M rows for a PREDICTION_LOG_SAMPLE share of calls; events come back for the items shown (SHOWN per call, assumed).
 * Masters needed: the ids/s over what one Redis served here at the nearest request size (client-bound on this
 * machine, so a dedicated node does more: an upper bound).
 */
function sizing(single: ReadFigures[], writes: Record<string, Record<number, number>>, config: AppConfig): string {
  const SHOWN = 10;
  const capacity = (ids: number) => {
    const nearest = single.reduce((best, f) => (Math.abs(f.ids - ids) < Math.abs(best.ids - ids) ? f : best));
    return nearest.requestsPerSecond * nearest.ids;
  };
  const pgCapacity = Math.min(writes.events[WRITERS], writes['prediction log'][WRITERS]);
  const rows: string[][] = [];
  for (const n of [1_000, 5_000])
    for (const m of [10, 100, 500]) {
      const idsPerSecond = n * (m + 1);
      const logRows = n * m * config.PREDICTION_LOG_SAMPLE;
      const eventRows = n * SHOWN;
      rows.push([
        formatCount(n),
        String(m),
        formatCount(idsPerSecond),
        String(Math.ceil(idsPerSecond / capacity(m + 1))),
        formatCount(logRows),
        formatCount(eventRows),
        `${(((logRows + eventRows) / pgCapacity) * 100).toFixed(0)} %`,
      ]);
    }
  return [
    `Sizing (worst case: no candidate in the item-row cache; prediction log sample ${config.PREDICTION_LOG_SAMPLE}; ` +
      `${SHOWN} events per call; Postgres share: of the slower writer's ${WRITERS}-writer rate here):`,
    '',
    markdownTable(
      [
        'calls/s',
        'candidates',
        'Redis ids/s',
        'Redis masters, at most',
        'prediction-log rows/s',
        'event rows/s',
        'Postgres primary, share of its writes',
      ],
      rows,
    ),
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
