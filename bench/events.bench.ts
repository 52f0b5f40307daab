/**
 * npm run bench:events [-- --quick] [-- --no-build] [-- --database bench] [-- --redis-db 2]
 *
 * Events ingested a second through the built API (POST /v1/events, batches of BATCH events posted by CLIENTS clients
 * at once, as a client sends them), for a production spec with no event-fed list, one (the last 50 clicked items) and
 * two (… and the genres of the last 20 clicked items), for users with few past events (10) and with many (2,000):
 * mostly negative (a click in 20, a like in 50), interleaved in time and in the table as real traffic leaves them.
 * Each batch is of users of one group:
 *   - newest: the events occurred now, after every stored one: a list built from events is appended to;
 *   - late: the events occurred at a random time of the past 30 days: each user's list is rebuilt from their events
 *     (a scan back to their last maxLength positives), which is what every positive event cost before the append.
 * Lists are backfilled (built from the history) before the timing. Beside events/s (which a shared machine blurs): the
 * database's shared-buffer accesses per event (pg_stat_database; on a cache colder than this one, page reads) and the
 * CPU ms per 1,000 events of the API process and of its Postgres backends (/proc).
 */
import { loadavg } from 'node:os';
import { DataSource } from 'typeorm';

import { loadConfig } from '@app/config';
import { dataSourceOptions } from '@app/db';
import type { ModelSpecInput } from '@app/mmoe';

import { freePort } from '../test/fixtures/free-port';
import { seedModelVersion, TINY_SPEC } from '../test/fixtures/model.fixture';
import { benchStores, buildApi, prepareStores, startStoresApi, waitFor } from './bench.stores';
import { cpuModel, formatCount, hasFlag, log, markdownTable, processCpuMs } from './bench.util';

const QUICK = hasFlag('quick');
const BATCH = 100;
const CLIENTS = 4;
const SECONDS = QUICK ? 3 : 10;
const ITEMS = 5_000;
const GROUPS = { few: { users: 2_000, history: 10 }, many: { users: QUICK ? 200 : 1_000, history: 2_000 } } as const;
type Group = keyof typeof GROUPS;
const DAY_MS = 86_400_000;

const CLICKS = { name: 'user_recent_clicks', type: 'sequence' as const, hashBuckets: 1024, maxLength: 50 };
/** The spec's features by the number of event-fed lists. */
const CONFIGS: [string, ModelSpecInput['features']][] = [
  ['no fed list', TINY_SPEC.features],
  ['1 fed list', [...TINY_SPEC.features, { ...CLICKS, fromEvents: { task: 'click' } }]],
  [
    '2 fed lists',
    [
      ...TINY_SPEC.features.map((f) =>
        f.type === 'sequence' && f.name === 'user_recent_genres'
          ? { ...f, maxLength: 20, fromEvents: { task: 'click', itemFeature: 'item_genre' } }
          : f,
      ),
      { ...CLICKS, fromEvents: { task: 'click' } },
    ],
  ],
];

/** Users and items, and each group's history: one event per user per step, interleaved, over the past 30 days. */
async function seedHistory(db: DataSource): Promise<number> {
  await db.query(
    `INSERT INTO item_features (entity_id, features)
     SELECT 'i' || k, jsonb_build_object('item_genre', 'g' || (k % 6), 'item_price', k % 100) FROM generate_series(0, $1 - 1) k`,
    [ITEMS],
  );
  for (const [group, { users, history }] of Object.entries(GROUPS)) {
    log(`history: ${formatCount(users)} users × ${formatCount(history)} past events (${group}) …`);
    await db.query(
      `INSERT INTO events (event_id, user_id, item_id, labels, occurred_at)
       SELECT 'h-' || $1 || '-' || u || '-' || k, $1 || u, 'i' || ((u * 7919 + k * 104729) % $4),
         jsonb_build_object('click', (hashint4(u * 31 + k) % 20 = 0)::int, 'like', (hashint4(u * 37 + k) % 50 = 0)::int),
         now() - interval '30 days' + (k * interval '30 days') / $3
       FROM generate_series(1, $3) k, generate_series(0, $2 - 1) u`,
      [group, users, history, ITEMS],
    );
  }
  await db.query('ANALYZE events');
  const [{ n }] = await db.query('SELECT count(*)::int AS n FROM events');
  return n;
}

let nextEvent = 0;
/** A batch of one group's users: a click in 20, a like in 50; `late` ones occurred in the past 30 days. */
function batch(group: Group, late: boolean): object {
  const now = Date.now();
  return {
    events: Array.from({ length: BATCH }, () => {
      const n = nextEvent++;
      return {
        eventId: `b${n}`,
        userId: `${group}${Math.floor(Math.random() * GROUPS[group].users)}`,
        itemId: `i${Math.floor(Math.random() * ITEMS)}`,
        labels: { click: Math.random() < 0.05 ? 1 : 0, like: Math.random() < 0.02 ? 1 : 0 },
        occurredAt: new Date(late ? now - Math.random() * 30 * DAY_MS : now).toISOString(),
      };
    }),
  };
}

interface Figures {
  eventsPerSecond: number;
  /** CPU ms per 1,000 events: the API process's, and its Postgres backends'. */
  apiCpu: number;
  postgresCpu: number;
  /** Shared buffers the database accessed per event (hits and reads: on a cold cache, each a page read). */
  buffers: number;
}

/** The database's buffer accesses so far, once the idle backends have flushed their statistics (within 1 s). */
async function buffersNow(db: DataSource): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const [{ blocks }] = await db.query(
    'SELECT (blks_hit + blks_read)::float8 AS blocks FROM pg_stat_database WHERE datname = current_database()',
  );
  return blocks;
}

/** CPU ms used so far by the API process and by the bench database's client backends other than `db`'s (the API's). */
async function cpuNow(db: DataSource, apiPid: number): Promise<Map<number, number>> {
  const backends: { pid: number }[] = await db.query(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
  );
  const cpu = new Map<number, number>();
  for (const pid of [apiPid, ...backends.map((b) => b.pid)]) {
    try {
      cpu.set(pid, processCpuMs(pid));
    } catch {
      // a backend that ended since the query
    }
  }
  return cpu;
}

/**
 * Events/s that CLIENTS clients sustain, each posting a batch after the last one's answer (after a second of the
 * same to warm up), and the CPU time they cost.
 */
async function ingest(base: string, group: Group, late: boolean, db: DataSource, apiPid: number): Promise<Figures> {
  let events = 0;
  const post = async () => {
    const response = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(batch(group, late)),
    });
    if (response.status !== 200) throw new Error(`POST /v1/events: ${response.status} ${await response.text()}`);
    events += BATCH;
  };
  const run = async (seconds: number) => {
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < end) await post();
      }),
    );
  };
  await run(1);
  events = 0;
  const buffersBefore = await buffersNow(db);
  const before = await cpuNow(db, apiPid);
  const started = performance.now();
  await run(SECONDS);
  const seconds = (performance.now() - started) / 1000;
  const after = await cpuNow(db, apiPid);
  const buffers = (await buffersNow(db)) - buffersBefore;
  let postgresCpu = 0;
  for (const [pid, ms] of after) if (pid !== apiPid) postgresCpu += ms - (before.get(pid) ?? 0);
  const per = 1000 / events;
  return {
    eventsPerSecond: events / seconds,
    apiCpu: (after.get(apiPid)! - before.get(apiPid)!) * per,
    postgresCpu: postgresCpu * per,
    buffers: buffers / events,
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const { database, databaseUrl, redisUrl } = benchStores(config);
  const loadBefore = loadavg()[0];
  const started = performance.now();
  if (!hasFlag('no-build')) buildApi();
  await prepareStores(config.DATABASE_URL, databaseUrl, database, redisUrl);
  // One connection: its backend is the bench's, every other of the database the API's.
  const db = await new DataSource({ ...dataSourceOptions({ DATABASE_URL: databaseUrl }), poolSize: 1 }).initialize();
  const rows: string[][] = [];
  try {
    // Autovacuum's page accesses would count in the database's buffers: the history is analysed once instead.
    await db.query('ALTER TABLE events SET (autovacuum_enabled = off)');
    await db.query('ALTER TABLE user_features SET (autovacuum_enabled = off)');
    const history = await seedHistory(db);
    for (const [name, features] of CONFIGS) {
      // Not TRUNCATE … CASCADE: that would empty the events too (their model_version_id references model_versions).
      await db.query('DELETE FROM rollout_events; DELETE FROM model_versions; DELETE FROM event_feed_backfills');
      await db.query(`UPDATE user_features SET features = '{}', fed_heads = '{}'`);
      await seedModelVersion(db, 'production', { training: { features } });
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      // The live join (which reads the new events every LIVE_AGGREGATION_SECONDS) and the policy check off: the
      // database's buffers and CPU are then the ingestion's.
      const child = startStoresApi({ databaseUrl, redisUrl }, port, 'bench-events-admin-token-0123456789abcdef', {
        LIVE_AGGREGATION_SECONDS: '86400',
        ROLLOUT_POLICY_CHECK_SECONDS: '86400',
      });
      try {
        await waitFor(`${base}/health/ready`, child, 120_000);
        const feeds = features.filter((f) => 'fromEvents' in f).length;
        if (feeds > 0) {
          log(`${name}: backfilling the lists from the history …`);
          await ingest(base, 'few', false, db, child.pid!); // the first batch starts the backfill
          const deadline = Date.now() + 600_000;
          for (;;) {
            const [{ done }] = await db.query(
              'SELECT count(*)::int AS done FROM event_feed_backfills WHERE done_at IS NOT NULL',
            );
            if (done >= feeds) break;
            if (Date.now() > deadline) throw new Error('the backfill did not end within 10 minutes');
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        }
        for (const group of Object.keys(GROUPS) as Group[]) {
          log(`${name}, ${group} past events …`);
          for (const late of [false, true]) {
            const f = await ingest(base, group, late, db, child.pid!);
            rows.push([
              name,
              formatCount(GROUPS[group].history),
              late ? 'late (rebuilt)' : 'newest',
              formatCount(f.eventsPerSecond),
              f.buffers.toFixed(1),
              formatCount(f.postgresCpu),
              formatCount(f.apiCpu),
            ]);
          }
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      [
        `bench:events (CPU "${cpuModel()}"; 1-minute load ${loadBefore.toFixed(1)} before, ` +
          `${loadavg()[0].toFixed(1)} after; ${seconds.toFixed(0)} s; API, Postgres, Redis and client on this machine; ` +
          `${formatCount(history)} past events)`,
        '',
        `POST /v1/events (batches of ${BATCH}, ${CLIENTS} clients, ${SECONDS} s each; a click in 20, ` +
          'a like in 50). newest: occurred now (a list built from events is appended to); late: occurred in the past ' +
          '30 days (each list rebuilt from the user\u2019s events, as every positive event was before the append):',
        '',
        markdownTable(
          [
            'spec',
            'past events / user',
            'events',
            'events/s',
            'Postgres buffers / event',
            'Postgres CPU ms / 1,000 events',
            'API CPU ms / 1,000 events',
          ],
          rows,
        ),
        '',
      ].join('\n'),
    );
  } finally {
    await db.query('ALTER TABLE events RESET (autovacuum_enabled)');
    await db.query('ALTER TABLE user_features RESET (autovacuum_enabled)');
    await db.destroy();
  }
}

main().catch((error: unknown) => {
  // fetch() hides why it failed (a reset connection, a refused one) in the error's cause.
  const cause = error instanceof Error && error.cause !== undefined ? `\ncaused by: ${String(error.cause)}` : '';
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}${cause}\n`);
  process.exit(1);
});
