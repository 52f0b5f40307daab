import type { LoggerService } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { APP_CONFIG, ConfigModule, loadConfig } from '@app/config';
import {
  dataSourceOptions,
  EventRepository,
  FeaturesRepositoryModule,
  LiveStateRepository,
  ModelStoreModule,
  ModelVersionRepository,
  PredictionLogModule,
  ReadReplica,
  type NewEvent,
} from '@app/db';

import { metricsOf } from './fixtures/metrics.fixture';
import { seedModelVersion } from './fixtures/model.fixture';
import { keepSending, pause, seedProduction, startServingApi, type ServingApi } from './fixtures/outage.fixture';
import { startPostgresReplica, startPostgresServer, type PostgresServer } from './fixtures/store.servers';

const DAY = new Date('2026-11-02T00:00:00Z');
const WINDOW = [DAY, new Date(DAY.getTime() + 86_400_000)] as const;

/** Labelled impressions of request `request`, items `${request}-0…`, an hour into DAY. */
function events(request: string, count: number): NewEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    eventId: `${request}-e${i}`,
    userId: 'u1',
    itemId: `${request}-${i}`,
    labels: { click: i % 2 },
    requestId: request,
    modelVersionId: null,
    context: null,
    occurredAt: new Date(DAY.getTime() + 3_600_000 + i),
  }));
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(50);
  }
}

// A primary (initdb) and its streaming replica (pg_basebackup -R) of this file's own, started once.
describe('Postgres read replica (e2e)', () => {
  let primary: PostgresServer;
  let replica: PostgresServer;
  let primaryDb: DataSource;
  let replicaDb: DataSource;

  /** Resolves once the replica has replayed everything the primary has written so far. */
  const replayed = async () => {
    const [{ lsn }] = await primaryDb.query('SELECT pg_current_wal_lsn()::text AS lsn');
    await until('the replica to replay', async () => {
      const [{ behind }] = await replicaDb.query('SELECT pg_last_wal_replay_lsn() < $1::pg_lsn AS behind', [lsn]);
      return !behind;
    });
  };

  beforeAll(async () => {
    primary = await startPostgresServer();
    await seedProduction(primary.url, true);
    replica = await startPostgresReplica(primary);
    primaryDb = await new DataSource(dataSourceOptions({ DATABASE_URL: primary.url })).initialize();
    replicaDb = await new DataSource(dataSourceOptions({ DATABASE_URL: replica.url })).initialize();
  }, 120_000);

  afterAll(async () => {
    await Promise.all([primaryDb?.destroy(), replicaDb?.destroy()]);
    await Promise.all([replica?.destroy(), primary?.destroy()]);
  });

  describe('the repositories with DATABASE_READ_URL', () => {
    let moduleRef: TestingModule;
    const logs: string[] = [];
    const capture: LoggerService = {
      log: (message: string) => logs.push(String(message)),
      warn: (message: string) => logs.push(String(message)),
      error: (message: string) => logs.push(String(message)),
    };

    beforeAll(async () => {
      moduleRef = await Test.createTestingModule({
        imports: [ConfigModule, FeaturesRepositoryModule, PredictionLogModule, ModelStoreModule],
      })
        .overrideProvider(APP_CONFIG)
        .useValue(
          loadConfig({
            ...process.env,
            DATABASE_URL: primary.url,
            DATABASE_READ_URL: replica.url,
            DATABASE_READ_MAX_LAG_SECONDS: '1',
          }),
        )
        .setLogger(capture)
        .compile();
      await moduleRef.init();
    });

    afterAll(() => moduleRef?.close());

    it('reads live metrics and reports from the replica, from the primary when it lags; training windows from the primary', async () => {
      const [eventsRepo, state, versions, reads] = [
        moduleRef.get(EventRepository),
        moduleRef.get(LiveStateRepository),
        moduleRef.get(ModelVersionRepository),
        moduleRef.get(ReadReplica),
      ];
      const production = (await versions.findServing()).production!.id;
      // What the live join writes on the primary: labelled predictions of request `request`.
      const labelledRows = (request: string, count: number) =>
        primaryDb.query(
          `INSERT INTO live_labelled (request_id, item_id, version_id, user_id, logged_at, scores, labels)
           SELECT $1, $1 || '-' || i, $2, 'u1', now(), '{0.5, 0.1, 3}', '{"click": 1}' FROM generate_series(1, $3) AS i`,
          [request, production, count],
        );
      await eventsRepo.insertNew(events('r1', 3));
      await labelledRows('r1', 3);
      await replayed();
      await until('the replica to be used', () => reads.state === 'up');
      const trainingWindow = () => eventsRepo.readInSnapshot((r) => r.window(...WINDOW, []));
      const labelled = async () =>
        (
          await state.labelledTasks(production, [{ name: 'click', index: 0 }], new Date(Date.now() - 3_600_000), 1000)
        )[0];

      // Replay paused: the primary moves on, the replica does not; a read that sees only the old rows was the replica's.
      const counted = structuredClone(reads.reads);
      await replicaDb.query('SELECT pg_wal_replay_pause()');
      await eventsRepo.insertNew(events('r2', 3));
      await labelledRows('r2', 3);
      const candidate = await seedModelVersion(primaryDb, 'candidate');
      // A training window is read in a snapshot of the primary (its late events are told apart by that snapshot).
      expect(await trainingWindow()).toHaveLength(6);
      expect(await labelled()).toHaveLength(3);
      // A version the replica has not replayed yet is read from the primary: never a 404 for a version just made.
      expect(await versions.getStored(candidate)).toMatchObject({ id: candidate, status: 'candidate' });
      expect(reads.reads.served.replica - counted.served.replica).toBeGreaterThanOrEqual(1);
      expect(reads.reads.fallbacks.not_replayed - counted.fallbacks.not_replayed).toBe(1);
      expect(reads.reads.fallbacks.unusable).toBe(counted.fallbacks.unusable);

      await until('the replica to be left for lagging', () => reads.state === 'down', 10_000);
      expect(reads.lagSeconds).toBeGreaterThan(1);
      expect(await labelled()).toHaveLength(6);
      expect(reads.reads.fallbacks.unusable - counted.fallbacks.unusable).toBeGreaterThanOrEqual(1);

      await replicaDb.query('SELECT pg_wal_replay_resume()');
      await until('the replica to be used again', () => reads.state === 'up', 10_000);
      expect(await labelled()).toHaveLength(6);
      expect(logs.filter((line) => /read replica not used \(lagging \d+ s/.test(line))).toHaveLength(1);
      expect(logs.filter((line) => line === 'read replica in use')).toHaveLength(2);
    });
  });

  describe('an API process with DATABASE_READ_URL', () => {
    let api: ServingApi;

    beforeAll(async () => {
      api = await startServingApi({ DATABASE_URL: primary.url, DATABASE_READ_URL: replica.url });
    }, 120_000);

    afterAll(() => api?.process.stop());

    it('answers every live-metrics read while the replica is stopped under load, logs it once, and goes back to it', async () => {
      const [{ id }] = await primaryDb.query(`SELECT id FROM model_versions WHERE status = 'production'`);
      const ready = async () => (await api.call('GET', '/health/ready')).body;
      await until('the replica to be used', async () => (await ready()).status === 'ok');
      expect(await ready()).toMatchObject({ checks: { replica: 'up' } });
      const replicaMetrics = async () => {
        const metrics = await metricsOf(api);
        return {
          inUse: metrics.get('read_replica_in_use'),
          lag: metrics.get('read_replica_lag_seconds'),
          reads: metrics.series('read_replica_reads_total'),
          fallbacks: metrics.series('read_replica_fallbacks_total'),
        };
      };

      const load = keepSending(() => api.call('GET', `/admin/models/${id}/live-metrics`));
      await load.atLeast(20);
      const up = await replicaMetrics();
      expect(up).toMatchObject({ inUse: 1, lag: expect.any(Number) });
      expect(up.lag).toBeGreaterThanOrEqual(0);
      expect(up.lag).toBeLessThan(30);
      expect(up.reads['{served_by="replica"}']).toBeGreaterThanOrEqual(20);
      await replica.stop();
      await load.atLeast(30);
      // Stopped before the scrape: a request in flight would have its fallbacks counted and not yet its reads.
      await load.stop();
      // Every read since answered by the primary, each counted as a fallback: the replica was unusable or failed.
      const down = await replicaMetrics();
      expect(down.inUse).toBe(0);
      expect(down.lag).toBeNaN();
      const fallbacks = (m: typeof up) => m.fallbacks['{reason="unusable"}'] + m.fallbacks['{reason="failed"}'];
      expect(fallbacks(down) - fallbacks(up)).toBeGreaterThanOrEqual(30);
      expect(down.reads['{served_by="primary"}'] - up.reads['{served_by="primary"}']).toBe(
        fallbacks(down) -
          fallbacks(up) +
          down.fallbacks['{reason="not_replayed"}'] -
          up.fallbacks['{reason="not_replayed"}'],
      );
      expect(await ready()).toEqual({
        status: 'degraded',
        checks: { postgres: 'up', redis: 'up', model: 'up', replica: 'down' },
      });
      await replica.start();
      await until('the replica to be used again', async () => (await ready()).status === 'ok');
      const again = keepSending(() => api.call('GET', `/admin/models/${id}/live-metrics`));
      await again.atLeast(20);
      await again.stop();
      expect(await replicaMetrics()).toMatchObject({ inUse: 1, lag: expect.any(Number) });

      expect([...load.statuses, ...again.statuses].filter((status) => status !== 200)).toEqual([]);
      const output = api.process.output();
      expect(output.match(/read replica not used/g)).toHaveLength(1);
      expect(output.match(/read replica in use/g)).toHaveLength(2);
    }, 120_000);
  });
});
