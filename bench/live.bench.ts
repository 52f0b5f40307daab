/**
 * Live metrics at scale, and the prediction log keeping up, on the bench database:
 *   1. the log's write path by statement and row format — INSERT … SELECT FROM jsonb_to_recordset (what it was),
 *      a multi-row INSERT, COPY (pg-copy-streams); scores as jsonb or as real[] — measured as CPU time per 100,000
 *      rows, Postgres's backend and this process's, which a loaded machine does not blur as it does wall time;
 *   2. PredictionLogWriter (COPY, real[]) fed open-loop at 100, 200 and 400 responses/s × 500 candidates: rows
 *      written and dropped, and the rows/s it sustained;
 *   3. 10,000,000 logged predictions (20,000 requests × 500 candidates over the last hour; production and a canary,
 *      each user on one of them), events for 2 % of them (the 10 items each request showed, labelled from the scores),
 *      and the live join over those events, run by the built API as its repeatable job (events/s);
 *   4. on that database: GET live-metrics, GET compare-live and GET /metrics (sequential calls, p50 / p99 / max),
 *      the rollout policy's check (the durations of the API's own policy jobs), the old LATERAL join of the log with
 *      the events on the same data for comparison, and the binned AUC against the exact one;
 *   5. the late watermark's second lookup of every event (LIVE_LATE_JOIN_SECONDS), the API started again with it at 0
 *      once every event has been joined: what that second join costs when it labels nothing new.
 *
 *   npm run bench:live [-- --quick] [-- --writer-only] [-- --no-build] [-- --database bench] [-- --redis-db 2]
 */
import { loadavg } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Bull from 'bull';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DataSource } from 'typeorm';

import { loadConfig, type AppConfig } from '@app/config';
import { dataSourceOptions, PredictionLogRepository } from '@app/db';
import { auc, clusteredAuc, decodeAggregate, mergeAggregate, type BinaryAggregate } from '@app/mmoe';
import { LIVE_OPS_QUEUE, QUEUE_PREFIX } from '@app/queue';

import { PredictionLogWriter, type ServedPredictions } from '../apps/api/src/live/prediction-log.writer';
import { MetricsService } from '../apps/api/src/platform/metrics.service';
import { freePort } from '../test/fixtures/free-port';
import { seedModelVersion } from '../test/fixtures/model.fixture';
import { benchStores, buildApi, prepareStores, startStoresApi, waitFor } from './bench.stores';
import {
  cpuModel,
  formatCount,
  formatMs,
  hasFlag,
  log,
  markdownTable,
  processCpuMs,
  quantile,
  stopwatch,
} from './bench.util';

const QUICK = hasFlag('quick');
const TASKS = ['click', 'like', 'watch_time'] as const;
const CANDIDATES = 500;
const SHOWN = 10;
const REQUESTS = QUICK ? 2_000 : 20_000;
const USERS = QUICK ? 2_000 : 10_000;
const FORMAT_ROWS = QUICK ? 20_000 : 100_000;
const WRITER_RATES = [100, 200, 400];
const WRITER_SECONDS = QUICK ? 4 : 15;
const CALLS = QUICK ? 10 : 40;
const ADMIN_TOKEN = 'bench-live-admin-token-0123456789abcdef';

const copyText = (s: string) =>
  s.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);

interface Row {
  loggedAt: Date;
  requestId: string;
  itemId: string;
  userId: string;
  scores: number[];
}

/** Part 1: each way of writing a batch of 2,000 rows, on tables shaped like the log (its request-item index). */
async function writeFormats(dataSource: DataSource): Promise<string[][]> {
  const runner = dataSource.createQueryRunner();
  const client = (await runner.connect()) as PoolClient;
  const [{ pid }] = (await client.query('SELECT pg_backend_pid() AS pid')).rows;
  for (const [table, type] of [
    ['bench_log_jsonb', 'jsonb'],
    ['bench_log_real', 'real[]'],
  ]) {
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.query(`CREATE TABLE ${table} (logged_at timestamptz NOT NULL, request_id text NOT NULL,
      item_id text NOT NULL, user_id text NOT NULL, version_id int NOT NULL, role text NOT NULL, scores ${type} NOT NULL)`);
    await client.query(`CREATE INDEX ON ${table} (request_id, item_id)`);
  }
  const rows: Row[] = Array.from({ length: FORMAT_ROWS }, (_, i) => ({
    loggedAt: new Date(),
    requestId: `00000000-0000-4000-8000-${String(Math.floor(i / CANDIDATES)).padStart(12, '0')}`,
    itemId: `item-${i % CANDIDATES}`,
    userId: `user-${Math.floor(i / CANDIDATES) % USERS}`,
    scores: [Math.random(), Math.random(), 20 * Math.random()],
  }));
  const json = (r: Row) => JSON.stringify(Object.fromEntries(TASKS.map((t, k) => [t, r.scores[k]])));
  const values = (batch: Row[], scores: (r: Row) => unknown) => {
    const params: unknown[] = [];
    const tuples = batch.map((r, i) => {
      params.push(r.loggedAt, r.requestId, r.itemId, r.userId, 1, 'production', scores(r));
      return `(${Array.from({ length: 7 }, (_, k) => `$${i * 7 + k + 1}`).join(',')})`;
    });
    return { text: tuples.join(','), params };
  };
  const copy = async (table: string, batch: Row[], scores: (r: Row) => string) => {
    let text = '';
    for (const r of batch)
      text += `${r.loggedAt.toISOString()}\t${copyText(r.requestId)}\t${copyText(r.itemId)}\t${copyText(r.userId)}\t1\tproduction\t${scores(r)}\n`;
    await pipeline(Readable.from([text]), client.query(copyFrom(`COPY ${table} FROM STDIN`)));
  };
  const methods: [string, string, (batch: Row[]) => Promise<unknown>][] = [
    [
      'INSERT … jsonb_to_recordset (before)',
      'jsonb',
      (batch) =>
        client.query(
          `INSERT INTO bench_log_jsonb SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(logged_at timestamptz,
             request_id text, item_id text, user_id text, version_id int, role text, scores jsonb)`,
          [
            JSON.stringify(
              batch.map((r) => ({
                logged_at: r.loggedAt,
                request_id: r.requestId,
                item_id: r.itemId,
                user_id: r.userId,
                version_id: 1,
                role: 'production',
                scores: JSON.parse(json(r)),
              })),
            ),
          ],
        ),
    ],
    [
      'multi-row INSERT',
      'jsonb',
      (batch) => {
        const v = values(batch, json);
        return client.query(`INSERT INTO bench_log_jsonb VALUES ${v.text}`, v.params);
      },
    ],
    [
      'multi-row INSERT',
      'real[]',
      (batch) => {
        const v = values(batch, (r) => r.scores);
        return client.query(`INSERT INTO bench_log_real VALUES ${v.text}`, v.params);
      },
    ],
    ['COPY', 'jsonb', (batch) => copy('bench_log_jsonb', batch, (r) => copyText(json(r)))],
    ['COPY (now)', 'real[]', (batch) => copy('bench_log_real', batch, (r) => `{${r.scores.join(',')}}`)],
  ];
  const out: string[][] = [];
  try {
    for (const [name, format, write] of methods) {
      // A warm-up pass, then the measured one.
      for (const measured of [false, true]) {
        const pg = processCpuMs(pid);
        const cpu = process.cpuUsage();
        const elapsed = stopwatch();
        for (let i = 0; i < rows.length; i += 2000) await write(rows.slice(i, i + 2000));
        const seconds = elapsed();
        if (!measured) continue;
        const node = process.cpuUsage(cpu);
        const per = 100_000 / rows.length;
        out.push([
          name,
          format,
          formatCount((processCpuMs(pid) - pg) * per),
          formatCount(((node.user + node.system) / 1000) * per),
          formatCount(rows.length / seconds),
        ]);
      }
    }
    const [{ jsonb, real }] = (
      await client.query(
        `SELECT pg_total_relation_size('bench_log_jsonb') AS jsonb, pg_total_relation_size('bench_log_real') AS real`,
      )
    ).rows;
    log(
      `log bytes per row with its index: jsonb ${Math.round(jsonb / (3 * rows.length))}, real[] ${Math.round(real / (2 * rows.length))}`,
    );
    await client.query('DROP TABLE bench_log_jsonb, bench_log_real');
  } finally {
    await runner.release();
  }
  return out;
}

/** Part 2: the writer, fed open-loop at `rate` responses/s of CANDIDATES rows for WRITER_SECONDS. */
async function sustainWriter(dataSource: DataSource, config: AppConfig, rate: number): Promise<string[]> {
  const metrics = new MetricsService();
  const writer = new PredictionLogWriter(config, new PredictionLogRepository(dataSource), metrics);
  const itemIds = Array.from({ length: CANDIDATES }, (_, i) => `item-${i}`);
  // A response's score columns, in TASKS order.
  const scores = TASKS.map((task) =>
    Float32Array.from(itemIds, () => (task === 'watch_time' ? 20 : 1) * Math.random()),
  );
  const total = rate * WRITER_SECONDS;
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    // Open loop: every response whose scheduled time has come is enqueued, however the writer is doing.
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const served: ServedPredictions = {
        loggedAt: new Date(),
        requestId: `w${rate}-${sent}`,
        userId: `user-${sent % USERS}`,
        versionId: 1,
        role: 'production',
        itemIds,
        scores,
      };
      writer.enqueue(served);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await writer.flush();
  const seconds = (performance.now() - started) / 1000;
  const counted = Object.fromEntries(
    (await metrics.registry.getSingleMetric('prediction_log_rows_total')!.get()).values.map((v) => [
      v.labels.outcome,
      v.value,
    ]),
  );
  const rows = total * CANDIDATES;
  return [
    `${rate} × ${CANDIDATES}`,
    formatCount(rows / WRITER_SECONDS),
    formatCount(counted.written / seconds),
    formatCount(counted.dropped),
    `${((100 * counted.dropped) / rows).toFixed(1)} %`,
    formatCount(counted.failed),
  ];
}

/** Part 3: the log, the events and the two versions, generated in Postgres. */
async function load(dataSource: DataSource): Promise<{ production: number; canary: number }> {
  const production = await seedModelVersion(dataSource, 'production', { seed: 1 });
  const canary = await seedModelVersion(dataSource, 'canary', { seed: 2, canaryPercent: 50 });
  await dataSource.query(
    `INSERT INTO rollout_events (action, actor, from_version_id, to_version_id, percent, created_at)
     VALUES ('canary', 'bench', NULL, $1, 50, now() - interval '2 hours')`,
    [canary],
  );
  await new PredictionLogRepository(dataSource).maintainPartitions(new Date(Date.now() - 86_400_000), 1, new Date(0));
  const elapsed = stopwatch();
  // A user is on one side; a request's candidates share a time in the last hour. Click and like scores are
  // probabilities with a per-row latent; the events below draw their labels from them.
  await dataSource.query(
    `INSERT INTO prediction_log (logged_at, request_id, item_id, user_id, version_id, role, scores)
     SELECT now() - interval '1 minute' - (r % 3540) * interval '1 second', 'req-' || r, 'item-' || i, 'user-' || (r % $1),
       CASE WHEN r % $1 % 2 = 1 THEN $3::int ELSE $2::int END,
       CASE WHEN r % $1 % 2 = 1 THEN 'canary' ELSE 'production' END,
       ARRAY[1 / (1 + exp(1.5 - 1.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))),
             1 / (1 + exp(2 - sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))),
             20 + 10 * random()]::real[]
     FROM generate_series(0, $4::int - 1) AS r, generate_series(0, ${CANDIDATES - 1}) AS i`,
    [USERS, production, canary, REQUESTS],
  );
  log(`${formatCount(REQUESTS * CANDIDATES)} predictions logged in ${elapsed().toFixed(0)} s`);
  await dataSource.query(
    `INSERT INTO events (event_id, request_id, user_id, item_id, labels, occurred_at, created_at)
     SELECT 'ev-' || request_id || '-' || item_id, request_id, user_id, item_id,
       jsonb_build_object('click', (random() < scores[1])::int, 'like', (random() < scores[2])::int,
                          'watch_time', scores[3] + 5 * random()),
       logged_at, now() - interval '30 seconds'
     FROM prediction_log WHERE item_id IN (${Array.from({ length: SHOWN }, (_, i) => `'item-${i}'`).join(', ')})`,
  );
  await dataSource.query('ANALYZE prediction_log; ANALYZE events');
  log(`events stored (${elapsed().toFixed(0)} s)`);
  return { production, canary };
}

function printWriter(formats: string[][], writer: string[][]): void {
  console.log(`## The log's write path (${formatCount(FORMAT_ROWS)} rows, batches of 2,000)\n`);
  console.log(
    markdownTable(
      ['statement', 'scores', 'Postgres CPU ms / 100k rows', 'node CPU ms / 100k rows', 'rows/s (wall)'],
      formats,
    ),
  );
  const { PREDICTION_LOG_BATCH_ROWS: batch, PREDICTION_LOG_BUFFER_ROWS: buffer } = loadConfig();
  console.log(
    `\n## PredictionLogWriter, open loop for ${WRITER_SECONDS} s (COPY, real[], batches of ${formatCount(batch)}, buffer ${formatCount(buffer)} rows)\n`,
  );
  console.log(
    markdownTable(
      ['responses/s × candidates', 'rows/s offered', 'rows/s written', 'rows dropped', 'dropped', 'failed'],
      writer,
    ),
  );
}

async function timeCalls(url: string, headers: Record<string, string>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < CALLS + 3; i++) {
    const elapsed = stopwatch();
    const response = await fetch(url, { headers });
    await response.text();
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    if (i >= 3) times.push(elapsed() * 1000);
  }
  return times;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const { database, databaseUrl, redisUrl } = benchStores(config);
  if (!hasFlag('no-build')) buildApi();
  await prepareStores(config.DATABASE_URL, databaseUrl, database, redisUrl);
  const dataSource = await new DataSource(dataSourceOptions({ DATABASE_URL: databaseUrl })).initialize();
  const elapsed = stopwatch();
  try {
    log('1. the write path by statement and row format …');
    const formats = await writeFormats(dataSource);
    log('2. the writer, open loop …');
    await new PredictionLogRepository(dataSource).maintainPartitions(new Date(), 1, new Date(0));
    const writer: string[][] = [];
    for (const rate of WRITER_RATES) writer.push(await sustainWriter(dataSource, config, rate));
    await dataSource.query('TRUNCATE prediction_log');
    if (hasFlag('writer-only')) {
      printWriter(formats, writer);
      return;
    }
    log('3. 10 M predictions and their events …');
    const { production, canary } = await load(dataSource);
    const [{ events }] = await dataSource.query('SELECT count(*)::int AS events FROM events');

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    let child = startStoresApi({ databaseUrl, redisUrl }, port, ADMIN_TOKEN, {
      LIVE_AGGREGATION_SECONDS: '1',
      LIVE_AGGREGATION_LAG_SECONDS: '0',
      // The late watermark's second lookup of every event, minutes after the load, would land amid the reads timed here.
      LIVE_LATE_JOIN_SECONDS: '86400',
      ROLLOUT_POLICY_CHECK_SECONDS: '1',
    });
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    try {
      await waitFor(`${base}/health/ready`, child, 120_000);
      // A policy that never decides (it needs more events than there are): the check runs in full every second.
      const set = await fetch(`${base}/admin/models/${canary}/rollout-policy`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ minEvents: 100_000_000 }),
      });
      if (!set.ok) throw new Error(`setting the policy answered ${set.status}`);
      /** Events past a watermark of the live join. */
      const pendingOf = async (watermark: 'first' | 'late') => {
        const [xid, event] = watermark === 'first' ? ['ingest_xid', 'event_id'] : ['late_ingest_xid', 'late_event_id'];
        const [{ pending }] = await dataSource.query(
          `SELECT count(*)::int AS pending FROM events e, live_watermark w WHERE (e.ingest_xid, e.event_id) > (w.${xid}, w.${event})`,
        );
        return pending as number;
      };
      const joining = stopwatch();
      while ((await pendingOf('first')) > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
      const joinSeconds = joining();
      // The state grew from nothing to its full size in seconds; autovacuum would analyze it within a minute.
      await dataSource.query('ANALYZE live_labelled');
      const joined = Date.now();
      log(`4. the live join took ${joinSeconds.toFixed(0)} s for ${formatCount(events)} events; timing the reads …`);
      await new Promise((resolve) => setTimeout(resolve, 6000)); // a few policy checks on the finished state
      const latency = {
        'GET /admin/models/:id/live-metrics?window=1h': await timeCalls(
          `${base}/admin/models/${production}/live-metrics?window=1h`,
          auth,
        ),
        'GET /admin/models/:id/live-metrics?window=7d': await timeCalls(
          `${base}/admin/models/${production}/live-metrics?window=7d`,
          auth,
        ),
        'GET /admin/models/compare-live?window=1h': await timeCalls(
          `${base}/admin/models/compare-live?a=${production}&b=${canary}&window=1h`,
          auth,
        ),
        'GET /metrics': await timeCalls(`${base}/metrics`, {}),
      };
      const queue = new Bull(LIVE_OPS_QUEUE, redisUrl, { prefix: QUEUE_PREFIX });
      const checks = (await queue.getCompleted(0, 100))
        .filter((job) => job.name === 'rollout-policy' && job.finishedOn && job.processedOn && job.processedOn > joined)
        .map((job) => job.finishedOn! - job.processedOn!);
      await queue.close();

      // The binned AUC against the exact one, and what the old query took on the same data.
      const rows: { scores: number[]; labels: { click: number } }[] = await dataSource.query(
        `SELECT scores, labels FROM live_labelled WHERE version_id = $1`,
        [production],
      );
      const exact = auc(
        rows.map((r) => r.scores[0]),
        rows.map((r) => r.labels.click),
      );
      const minutes = (await dataSource.query(
        `SELECT state FROM live_aggregates WHERE version_id = $1 AND task = 'click' AND granularity = 'minute'`,
        [production],
      )) as { state: Buffer }[];
      const binned = clusteredAuc(
        minutes.map((m) => decodeAggregate(m.state) as BinaryAggregate).reduce((a, b) => mergeAggregate(a, b)),
      ).auc;
      let before = '> 120 s (stopped)';
      await dataSource.transaction(async (manager) => {
        await manager.query(`SET LOCAL statement_timeout = '120s'`);
        const old = stopwatch();
        const ok = await manager
          .query(
            `SELECT count(*) FROM prediction_log p CROSS JOIN LATERAL (
               SELECT jsonb_object_agg(k, v) AS labels FROM (SELECT k, max(v::float8) AS v
                 FROM events e, jsonb_each_text(e.labels) AS t(k, v)
                 WHERE e.request_id = p.request_id AND e.item_id = p.item_id GROUP BY k) merged) l
             WHERE p.version_id = $1 AND p.logged_at >= now() - interval '1 hour' AND l.labels IS NOT NULL`,
            [production],
          )
          .then(
            () => true,
            () => false,
          );
        if (ok) before = `${old().toFixed(1)} s`;
      });
      const sizes = (
        await dataSource.query(
          `SELECT relname AS name, pg_total_relation_size(oid) AS bytes FROM pg_class
           WHERE relname IN ('live_labelled', 'live_aggregates', 'live_canary_aggregates') OR relname LIKE 'prediction_log_2%'`,
        )
      ).reduce((acc: Record<string, number>, r: { name: string; bytes: string }) => {
        const key = r.name.startsWith('prediction_log') ? 'prediction_log' : r.name;
        acc[key] = (acc[key] ?? 0) + Number(r.bytes);
        return acc;
      }, {});

      log('5. the late watermark …');
      const stopped = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await stopped;
      const latePending = await pendingOf('late');
      child = startStoresApi({ databaseUrl, redisUrl }, port, ADMIN_TOKEN, {
        LIVE_AGGREGATION_SECONDS: '1',
        LIVE_AGGREGATION_LAG_SECONDS: '0',
        LIVE_LATE_JOIN_SECONDS: '0',
      });
      await waitFor(`${base}/health/ready`, child, 120_000);
      const lateJoining = stopwatch();
      while ((await pendingOf('late')) > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
      const lateSeconds = lateJoining();

      printWriter(formats, writer);
      console.log(
        `\n## Reads at ${formatCount(REQUESTS * CANDIDATES)} logged predictions, ${formatCount(events)} events ` +
          `(${SHOWN} of ${CANDIDATES} candidates per request, 2 %)\n`,
      );
      const row = (name: string, ms: number[]) => [
        name,
        formatMs(quantile(ms, 0.5)),
        formatMs(quantile(ms, 0.99)),
        formatMs(Math.max(...ms)),
      ];
      console.log(
        markdownTable(
          ['read', 'p50 ms', 'p99 ms', 'max ms'],
          [
            ...Object.entries(latency).map(([name, ms]) => row(name, ms)),
            row(`rollout policy check (${checks.length} jobs)`, checks.length ? checks : [NaN]),
          ],
        ),
      );
      console.log(
        `\nThe live join: ${formatCount(events)} events in ${joinSeconds.toFixed(0)} s (${formatCount(events / joinSeconds)} events/s). ` +
          `The late watermark's second lookup of the ${formatCount(latePending)} events it had not passed, once they were ` +
          `all joined (it labels nothing new): ${lateSeconds.toFixed(0)} s once the API was ready ` +
          `(${formatCount(latePending / lateSeconds)} events/s). ` +
          `Before, the LATERAL join of the log with the events for one version's hour: ${before}. ` +
          `AUC (click, production) from the binned aggregates ${binned.toFixed(5)}, exact ${exact.toFixed(5)} ` +
          `(difference ${Math.abs(binned - exact).toExponential(1)}). ` +
          `Sizes: prediction_log ${formatCount(sizes.prediction_log / 1e6)} MB, live_labelled ${formatCount(sizes.live_labelled / 1e6)} MB, ` +
          `live_aggregates ${formatCount(sizes.live_aggregates / 1e6)} MB, live_canary_aggregates ${formatCount(sizes.live_canary_aggregates / 1e6)} MB. ` +
          `${cpuModel()}, load ${loadavg()[0].toFixed(1)}, ${elapsed().toFixed(0)} s.`,
      );
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    await dataSource.destroy();
  }
}

void main();
