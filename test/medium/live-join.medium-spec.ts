import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  LiveStateRepository,
  PredictionLogModule,
  PredictionLogRepository,
  ServingStatsRepository,
  type LoggedPrediction,
} from '@app/db';
import {
  auc,
  BinaryAggregate,
  clusteredAuc,
  decodeAggregate,
  gauc,
  logLoss,
  mergeAggregate,
  Rng,
  liveTaskMetrics as taskMetrics,
  type TaskAggregate,
} from '@app/mmoe';
import { ModelRegistryService, POLICY_USER_BUCKETS, RegistryModule } from '@app/registry';

import { LiveJoinService } from '../../apps/api/src/live/live-join.service';
import { PredictionLogMaintenance } from '../../apps/api/src/live/prediction-log.maintenance';
import { PredictionLogWriter, type ServedPredictions } from '../../apps/api/src/live/prediction-log.writer';
import { MetricsService } from '../../apps/api/src/platform/metrics.service';
import { seedModelVersion } from '../fixtures/model.fixture';
import { createMediumModule } from './medium.module';

const TASKS = ['click', 'like', 'watch_time'];

/** The live join on the real Postgres: the log and the events in, the labelled predictions and aggregates out. */
describe('LiveJoinService (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  let dataSource: DataSource;
  let log: PredictionLogRepository;
  let state: LiveStateRepository;
  let registry: ModelRegistryService;
  let production: number;
  let candidate: number;
  const rng = new Rng(17);
  let eventSeq = 0;

  const join = (lagSeconds = 0, lateSeconds = 300) =>
    new LiveJoinService(
      {
        ...moduleRef.get<AppConfig>(APP_CONFIG),
        LIVE_AGGREGATION_LAG_SECONDS: lagSeconds,
        LIVE_LATE_JOIN_SECONDS: lateSeconds,
      },
      state,
      log,
      registry,
    ).run();
  const reset = () =>
    dataSource.query(
      `TRUNCATE model_versions, rollout_events, events, prediction_log, live_labelled, live_aggregates, live_canary_epochs,
         serving_stats CASCADE;
       UPDATE live_watermark SET ingest_xid = '0', event_id = '', late_ingest_xid = '0', late_event_id = ''`,
    );

  /** Writes served responses to the log as the API does (PredictionLogWriter: COPY text, one COPY a batch). */
  async function write(responses: ServedPredictions[]): Promise<void> {
    const writer = new PredictionLogWriter(moduleRef.get<AppConfig>(APP_CONFIG), log, new MetricsService());
    for (const response of responses) expect(writer.enqueue(response)).toBe(true);
    await writer.flush();
  }

  /**
   * `requests` served requests of `items` items each, scored by both versions (a shadow beside production), written
   * to the log; the rows they log.
   */
  async function serve(requests: number, items: number, at = new Date()): Promise<LoggedPrediction[]> {
    const rows: LoggedPrediction[] = [];
    const responses: ServedPredictions[] = [];
    for (let r = 0; r < requests; r++) {
      const requestId = `req-${at.getTime()}-${r}`;
      const userId = `user-${rng.int(12)}`;
      const itemIds = Array.from({ length: items }, (_, i) => `item-${i}`);
      const byVersion = [production, candidate].map((versionId) => ({
        loggedAt: at,
        requestId,
        userId,
        versionId,
        role: versionId === production ? ('production' as const) : ('shadow' as const),
        itemIds,
        scores: TASKS.map(() => new Float32Array(items)),
      }));
      for (let i = 0; i < items; i++)
        for (const response of byVersion) {
          const scores = [rng.next(), rng.next(), 10 + 5 * rng.gaussian()];
          scores.forEach((score, t) => (response.scores[t][i] = score));
          const { versionId, role } = response;
          rows.push({ loggedAt: at, requestId, itemId: itemIds[i], userId, versionId, role, scores });
        }
      responses.push(...byVersion);
    }
    await write(responses);
    return rows;
  }

  async function events(
    labels: { requestId: string | null; userId?: string; itemId: string; labels: Record<string, number> }[],
  ) {
    await dataSource.query(
      `INSERT INTO events (event_id, request_id, user_id, item_id, labels, occurred_at)
       SELECT e.event_id, e.request_id, e.user_id, e.item_id, e.labels, now()
       FROM jsonb_to_recordset($1::jsonb) AS e(event_id text, request_id text, user_id text, item_id text, labels jsonb)`,
      [
        JSON.stringify(
          labels.map((e) => ({
            event_id: `ev-${eventSeq++}`,
            request_id: e.requestId,
            user_id: e.userId ?? 'u',
            item_id: e.itemId,
            labels: e.labels,
          })),
        ),
      ],
    );
  }

  /** A version's aggregate of one task over all the stored minutes. */
  async function stored(versionId: number, task: string): Promise<TaskAggregate> {
    const rows = (await state.aggregates(versionId, 'minute', new Date(0))).filter((a) => a.task === task);
    return rows.map((r) => decodeAggregate(r.state)).reduce((sum, a) => mergeAggregate(sum, a));
  }

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [PredictionLogModule, RegistryModule] });
    dataSource = moduleRef.get(DataSource);
    log = moduleRef.get(PredictionLogRepository);
    state = moduleRef.get(LiveStateRepository);
    registry = moduleRef.get(ModelRegistryService);
    await reset();
    production = await seedModelVersion(dataSource, 'production', { seed: 1 });
    candidate = await seedModelVersion(dataSource, 'candidate', { seed: 2 });
    await log.maintainPartitions(new Date(), 1, new Date(0));
  });

  afterAll(async () => {
    await reset();
    await moduleRef.close();
  });

  it('labels each logged prediction once, merges later events into it, and keeps aggregates equal to a recomputation', async () => {
    const served = await serve(30, 8);
    const keys = [...new Map(served.map((p) => [`${p.requestId}/${p.itemId}`, p])).values()];
    // First events: clicks and watch time for every impression, likes for some.
    await events(
      keys.map((p) => ({
        requestId: p.requestId,
        userId: p.userId,
        itemId: p.itemId,
        labels: {
          click: rng.next() < 0.3 ? 1 : 0,
          watch_time: 10 + 5 * rng.gaussian(),
          ...(rng.next() < 0.5 && { like: 0 }),
        },
      })),
    );
    // Noise the join skips: no request id, a request never logged.
    await events([
      { requestId: null, itemId: 'item-1', labels: { click: 1 } },
      { requestId: 'never-served', itemId: 'item-1', labels: { click: 1 } },
    ]);
    expect(await join()).toMatchObject({ events: keys.length + 2, labelled: 2 * keys.length });
    // Later events for some impressions: a click that turns a 0 into 1 (labels merge, max per task), a like.
    const later = keys.filter(() => rng.next() < 0.3);
    await events(
      later.map((p) => ({ requestId: p.requestId, userId: p.userId, itemId: p.itemId, labels: { click: 1, like: 1 } })),
    );
    expect(await join()).toMatchObject({ events: later.length });
    expect(await join()).toMatchObject({ events: 0, labelled: 0 });

    // The expected metrics, recomputed from the stored labelled predictions.
    const labelled: { requestId: string; itemId: string; scores: number[]; labels: Record<string, number> }[] =
      await dataSource.query(
        `SELECT request_id AS "requestId", item_id AS "itemId", scores, labels FROM live_labelled WHERE version_id = $1`,
        [production],
      );
    expect(labelled).toHaveLength(keys.length);
    const merged = await dataSource.query(
      `SELECT request_id, item_id, jsonb_object_agg(k, v) AS labels FROM (
         SELECT request_id, item_id, k, max(v::float8) AS v FROM events, jsonb_each_text(labels) AS t(k, v)
         WHERE request_id IS NOT NULL GROUP BY 1, 2, 3) m GROUP BY 1, 2`,
    );
    const byKey = new Map(
      merged.map((m: { request_id: string; item_id: string; labels: object }) => [
        `${m.request_id}/${m.item_id}`,
        m.labels,
      ]),
    );
    for (const row of labelled) expect(row.labels).toEqual(byKey.get(`${row.requestId}/${row.itemId}`));

    for (const [t, task] of TASKS.entries()) {
      const rows = labelled.filter((r) => typeof r.labels[task] === 'number');
      const scores = rows.map((r) => r.scores[t]);
      const labels = rows.map((r) => r.labels[task]);
      const metrics = taskMetrics(await stored(production, task));
      expect(metrics.count).toBe(rows.length);
      if (metrics.type === 'binary') {
        const requests = [...new Set(rows.map((r) => r.requestId))];
        const grouped = gauc(
          scores,
          labels,
          rows.map((r) => requests.indexOf(r.requestId)),
        );
        expect(metrics.labelRate).toBeCloseTo(labels.reduce((s, y) => s + y, 0) / rows.length, 12);
        expect(metrics.meanPrediction).toBeCloseTo(scores.reduce((s, p) => s + p, 0) / rows.length, 6);
        expect(metrics.logloss).toBeCloseTo(logLoss(scores, labels), 6);
        expect(metrics.gauc).toBeCloseTo(grouped.gauc, 6);
        expect(metrics.gaucGroups).toBe(grouped.groups);
        // Scores binned on the logit scale (1/32 wide): close to the exact AUC.
        expect(Math.abs(metrics.auc! - auc(scores, labels))).toBeLessThan(5e-3);
      } else {
        const mse = rows.reduce((s, r) => s + (r.scores[t] - r.labels[task]) ** 2, 0) / rows.length;
        expect(metrics.rmse).toBeCloseTo(Math.sqrt(mse), 4);
      }
    }
    // The hour's and the day's aggregates hold the same predictions as the minutes'.
    const day = (await state.aggregates(production, 'day', new Date(0))).find((a) => a.task === 'click')!;
    expect(taskMetrics(decodeAggregate(day.state)).count).toBe(taskMetrics(await stored(production, 'click')).count);
  });

  it('keeps a labelled prediction as long as the log keeps its prediction: a late event merges, never counts twice', async () => {
    const served = await serve(3, 4);
    const keys = [...new Map(served.map((p) => [`${p.requestId}/${p.itemId}`, p])).values()];
    await events(
      keys.map((p) => ({ requestId: p.requestId, userId: p.userId, itemId: p.itemId, labels: { click: 0 } })),
    );
    await join();
    const counted = taskMetrics(await stored(production, 'click')).count;
    // A retention of 0 days: every day before today's goes, today's partition (these predictions) stays.
    const config = { ...moduleRef.get<AppConfig>(APP_CONFIG), PREDICTION_LOG_RETENTION_DAYS: 0 };
    const maintenance = new PredictionLogMaintenance(config, log, state, moduleRef.get(ServingStatsRepository));
    await maintenance.run();
    await events(
      keys.map((p) => ({ requestId: p.requestId, userId: p.userId, itemId: p.itemId, labels: { click: 1 } })),
    );
    expect(await join()).toMatchObject({ events: keys.length });
    expect(taskMetrics(await stored(production, 'click')).count).toBe(counted);
  });

  it('joins an event whose transaction committed after later ones had been joined', async () => {
    const [first, second] = (await serve(2, 1)).filter((p) => p.versionId === production);
    // A batch that began first and waited (on the served-set lock, on user rows) before it committed.
    const slow = dataSource.createQueryRunner();
    await slow.connect();
    await slow.startTransaction();
    try {
      await slow.query(
        `INSERT INTO events (event_id, request_id, user_id, item_id, labels, occurred_at)
         VALUES ($1, $2, $3, $4, '{"click": 1}', now())`,
        [`ev-${eventSeq++}`, first.requestId, first.userId, first.itemId],
      );
      await events([
        { requestId: second.requestId, userId: second.userId, itemId: second.itemId, labels: { click: 1 } },
      ]);
      // The later event waits for the batch that might still commit behind it.
      expect(await join()).toMatchObject({ events: 0 });
      await slow.commitTransaction();
    } finally {
      await slow.release();
    }
    expect(await join()).toMatchObject({ events: 2 });
    const labelled: { request_id: string }[] = await dataSource.query(
      `SELECT request_id FROM live_labelled WHERE version_id = $1 AND request_id = ANY($2)`,
      [production, [first.requestId, second.requestId]],
    );
    expect(labelled.map((r) => r.request_id).sort()).toEqual([first.requestId, second.requestId].sort());
  });

  it("joins an event to its own user's prediction when a client reuses a request id across users", async () => {
    // Two users' requests under one caller-chosen x-request-id, both shown item-0; only the second user clicks.
    const response = (userId: string, score: number): ServedPredictions => ({
      loggedAt: new Date(),
      requestId: 'shared-request',
      userId,
      versionId: production,
      role: 'production',
      itemIds: ['item-0'],
      scores: [score, 0.1, 3].map((s) => Float32Array.of(s)),
    });
    const counted = taskMetrics(await stored(production, 'click')).count;
    await write([response('user-a', 0.9), response('user-b', 0.2)]);
    await events([{ requestId: 'shared-request', userId: 'user-b', itemId: 'item-0', labels: { click: 1 } }]);
    expect(await join()).toMatchObject({ events: 1, labelled: 1 });
    const labelled = await dataSource.query(
      `SELECT user_id, scores[1] AS click, labels FROM live_labelled WHERE request_id = 'shared-request'`,
    );
    expect(labelled).toEqual([{ user_id: 'user-b', click: expect.closeTo(0.2, 6), labels: { click: 1 } }]);
    // The other user's event on the same item is its own labelled prediction, not a merge into user-b's.
    await events([{ requestId: 'shared-request', userId: 'user-a', itemId: 'item-0', labels: { click: 0 } }]);
    expect(await join()).toMatchObject({ events: 1, labelled: 1 });
    expect(taskMetrics(await stored(production, 'click')).count).toBe(counted + 2);
  });

  it('leaves an event to a later pass until LIVE_AGGREGATION_LAG_SECONDS have passed (its prediction may be buffered)', async () => {
    await events([{ requestId: 'late-request', userId: 'user-1', itemId: 'item-0', labels: { click: 1 } }]);
    expect(await join(60)).toMatchObject({ events: 0 });
    await write([
      {
        loggedAt: new Date(),
        requestId: 'late-request',
        userId: 'user-1',
        versionId: production,
        role: 'production',
        itemIds: ['item-0'],
        scores: [0.4, 0.1, 3].map((score) => Float32Array.of(score)),
      },
    ]);
    expect(await join()).toMatchObject({ events: 1, labelled: 1 });
  });

  it('labels a prediction that reached the log after its event was joined, when the late watermark joins it again', async () => {
    const counted = taskMetrics(await stored(production, 'click')).count;
    await events([{ requestId: 'held-up', userId: 'user-2', itemId: 'item-0', labels: { click: 1 } }]);
    // Its prediction is not in the log yet (a COPY held up past the lag): the first pass joins nothing.
    expect(await join(0, 300)).toMatchObject({ events: 1, labelled: 0, lateLabelled: 0 });
    await write([
      {
        loggedAt: new Date(),
        requestId: 'held-up',
        userId: 'user-2',
        versionId: production,
        role: 'production',
        itemIds: ['item-0'],
        scores: [0.4, 0.1, 3].map((score) => Float32Array.of(score)),
      },
    ]);
    expect(await join(0, 300)).toMatchObject({ events: 0, lateLabelled: 0 });
    // The late watermark reaches it: labelled once, and a second late pass changes nothing.
    expect(await join(0, 0)).toMatchObject({ lateLabelled: 1 });
    expect(await join(0, 0)).toMatchObject({ lateLabelled: 0 });
    expect(taskMetrics(await stored(production, 'click')).count).toBe(counted + 1);
  });

  it('reads the registry between passes, never on another connection while a pass holds its transaction', async () => {
    // A query on another connection inside the pass could wait behind a lock that waits for the pass (a TRUNCATE
    // CASCADE of the versions, which reaches the events the pass is reading): neither would ever finish.
    let inPass = false;
    const exclusively = state.exclusively.bind(state);
    const spied = jest.spyOn(state, 'exclusively').mockImplementation(async (pass) => {
      inPass = true;
      try {
        return await exclusively(pass);
      } finally {
        inPass = false;
      }
    });
    const calls: string[] = [];
    const guard = <K extends 'findServing' | 'canaryEntered' | 'find'>(name: K) => {
      const original = registry[name].bind(registry) as (...args: unknown[]) => unknown;
      return jest.spyOn(registry, name).mockImplementation(((...args: unknown[]) => {
        calls.push(`${name}${inPass ? ' inside a pass' : ''}`);
        return original(...args);
      }) as never);
    };
    const guards = [guard('findServing'), guard('canaryEntered'), guard('find')];
    try {
      const served = await serve(5, 2);
      await events(
        served.map((p) => ({ requestId: p.requestId, userId: p.userId, itemId: p.itemId, labels: { click: 1 } })),
      );
      // A service that has not met these versions yet (their tasks are read between passes).
      const config = { ...moduleRef.get<AppConfig>(APP_CONFIG), LIVE_AGGREGATION_LAG_SECONDS: 0 };
      const fresh = new LiveJoinService(config, state, log, registry);
      await fresh.run();
      expect(calls).toContain('find');
      expect(calls.filter((c) => c.endsWith('inside a pass'))).toEqual([]);
    } finally {
      spied.mockRestore();
      for (const g of guards) g.mockRestore();
    }
  });

  it('keeps the canary comparison per user bucket since the canary started, and rebuilds it when it is lost', async () => {
    await registry.setCanary(candidate, 50, undefined, 'medium');
    const entered = (await registry.canaryEntered(candidate))!;
    const served = await serve(40, 5, new Date(Date.now() + 1000));
    await events(
      [...new Map(served.map((p) => [`${p.requestId}/${p.itemId}`, p])).values()].map((p) => ({
        requestId: p.requestId,
        userId: p.userId,
        itemId: p.itemId,
        labels: { click: rng.next() < 0.4 ? 1 : 0 },
      })),
    );
    await join();
    const read = async () => {
      const { aggregates, users } = (await state.canaryState(entered.id))!;
      const click = aggregates.find((a) => a.versionId === candidate && a.task === 'click')!;
      return { click: decodeAggregate(click.state) as BinaryAggregate, users: users.get(candidate) };
    };
    const incremental = await read();
    expect(incremental.click.clusters).toBe(POLICY_USER_BUCKETS);
    // Only predictions logged since the canary started: this test's 200 of the candidate's.
    expect(incremental.click.totals().count).toBe(200);
    expect(incremental.users).toBe(new Set(served.map((p) => p.userId)).size);

    await dataSource.query('DELETE FROM live_canary_epochs');
    await join();
    const rebuilt = await read();
    expect(rebuilt.users).toBe(incremental.users);
    expect(clusteredAuc(rebuilt.click)).toEqual(clusteredAuc(incremental.click));
  });
});
