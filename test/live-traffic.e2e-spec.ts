import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';

import { PredictionLogRepository } from '@app/db';
import { Rng } from '@app/mmoe';

import { LiveJoinService } from '../apps/api/src/live/live-join.service';
import { LiveMetricsGauges } from '../apps/api/src/live/live-metrics.gauges';
import { PredictionLogWriter } from '../apps/api/src/live/prediction-log.writer';
import { ShadowScorer } from '../apps/api/src/live/shadow.scorer';
import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import type { ScoreResponseDto } from '../apps/api/src/scoring/dto/score.dto';
import { createApiApp } from './api-app.factory';
import { UNBOUNDED_ADMISSION_ENV } from './fixtures/app.process';
import { seedModelVersion, tinyItem, tinyOutcome, tinyUser } from './fixtures/model.fixture';

const TOKEN = 'live-traffic-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const USERS = 40;
const ITEMS = Array.from({ length: 12 }, (_, i) => `item-${i}`);

describe('live traffic: prediction log, online metrics, shadow (e2e)', () => {
  let app: NestFastifyApplication;
  let dataSource: DataSource;
  let production: number;
  let candidate: number;

  const get = (url: string) => app.inject({ method: 'GET', url, headers: auth });
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: auth, payload });
  const score = async (user: number): Promise<ScoreResponseDto> => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: { userId: `u-${user}`, itemIds: ITEMS },
    });
    expect(response.statusCode).toBe(200);
    return response.json<ScoreResponseDto>();
  };
  /** Waits for the shadow queue and the log buffer, so that the rows are in Postgres. */
  const settle = async () => {
    await app.get(ShadowScorer).idle();
    await app.get(PredictionLogWriter).flush();
  };
  const logged = async (): Promise<{ role: string; version_id: number; n: number }[]> =>
    dataSource.query(
      `SELECT role, version_id, count(*)::int AS n FROM prediction_log GROUP BY role, version_id ORDER BY role`,
    );

  beforeAll(async () => {
    // Production is not sampled at all here: every logged production row is there because of the shadow.
    app = await createApiApp({
      ...UNBOUNDED_ADMISSION_ENV,
      ADMIN_TOKEN: TOKEN,
      PREDICTION_LOG_SAMPLE: '0',
      PREDICTION_LOG_FLUSH_MS: '20',
      LIVE_AGGREGATION_LAG_SECONDS: '0',
    });
    dataSource = app.get(DataSource);
    await dataSource.query('TRUNCATE model_versions, rollout_events, events, prediction_log RESTART IDENTITY CASCADE');
    production = await seedModelVersion(dataSource, 'production', { seed: 1 });
    candidate = await seedModelVersion(dataSource, 'candidate', { seed: 2 });
    await app.get(ModelLifecycleService).refresh();
    const users = Array.from({ length: USERS }, (_, i) => ({ id: `u-${i}`, features: { ...tinyUser(i) } }));
    const items = ITEMS.map((id, i) => ({ id, features: { ...tinyItem(i) } }));
    expect(
      (await app.inject({ method: 'PUT', url: '/v1/users/features', payload: { entities: users } })).statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ method: 'PUT', url: '/v1/items/features', payload: { entities: items } })).statusCode,
    ).toBe(200);
  });

  afterAll(async () => {
    await dataSource.query('TRUNCATE model_versions, rollout_events, events, prediction_log RESTART IDENTITY CASCADE');
    await app.close();
  });

  it('logs nothing of production beyond its sample', async () => {
    for (let u = 0; u < 5; u++) await score(u);
    await settle();
    expect(await logged()).toEqual([]);
  });

  it('shadows every request at 100 %, without changing a response, and logs both versions side by side', async () => {
    const before = await Promise.all(Array.from({ length: USERS }, (_, u) => score(u)));
    const response = await post(`/admin/models/${candidate}/shadow`, { percent: 100 });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      event: { action: 'shadow', actor: 'admin', toVersionId: candidate, percent: 100 },
      shadow: { id: candidate, status: 'shadow', shadowPercent: 100 },
    });
    await app.get(ModelLifecycleService).refresh();
    expect(app.get(ModelLifecycleService).current().shadow?.versionId).toBe(candidate);

    const during: ScoreResponseDto[] = [];
    for (let u = 0; u < USERS; u++) during.push(await score(u));
    // The shadow answers nothing: same version, same ranking, same scores as before it existed.
    expect(during.map((r) => ({ v: r.modelVersion, items: r.items }))).toEqual(
      before.map((r) => ({ v: r.modelVersion, items: r.items })),
    );
    await settle();
    expect(await logged()).toEqual([
      { role: 'production', version_id: production, n: USERS * ITEMS.length },
      { role: 'shadow', version_id: candidate, n: USERS * ITEMS.length },
    ]);
    const [row] = await dataSource.query(
      `SELECT p.scores AS production, s.scores AS shadow FROM prediction_log p
       JOIN prediction_log s ON s.request_id = p.request_id AND s.item_id = p.item_id AND s.role = 'shadow'
       WHERE p.role = 'production' AND p.request_id = $1 AND p.item_id = $2`,
      [during[0].requestId, during[0].items[0].itemId],
    );
    // Each task's score, in the spec's task order (click, like, watch_time).
    expect(row.shadow).toHaveLength(3);
    expect(row.production[0]).toBeCloseTo(during[0].items[0].scores.click, 5);
    expect(row.production[2]).toBeCloseTo(during[0].items[0].scores.watch_time, 3);
    expect(row.shadow[0]).not.toBeCloseTo(row.production[0], 5);

    // Labels from the tiny world come back for every shadowed impression.
    const rng = new Rng(11);
    const events = during.flatMap((r, u) =>
      r.items.map((item) => {
        const outcome = tinyOutcome(tinyUser(u), tinyItem(ITEMS.indexOf(item.itemId)), rng);
        return {
          eventId: `${r.requestId}:${item.itemId}`,
          userId: `u-${u}`,
          itemId: item.itemId,
          requestId: r.requestId,
          labels: { click: outcome.clicked, like: outcome.liked, watch_time: outcome.watch_seconds },
        };
      }),
    );
    expect((await app.inject({ method: 'POST', url: '/v1/events', payload: { events } })).statusCode).toBeLessThan(300);
    // The live join (a repeatable job every LIVE_AGGREGATION_SECONDS, run here too) labels both versions' predictions.
    const deadline = Date.now() + 30_000;
    while ((await dataSource.query('SELECT count(*)::int AS n FROM live_labelled'))[0].n < 2 * events.length) {
      if (Date.now() > deadline) throw new Error('the live join did not label the predictions');
      await app.get(LiveJoinService).run();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it('measures each version on its labelled predictions: AUC, GAUC, logloss, calibration, count', async () => {
    const response = await get(`/admin/models/${production}/live-metrics?window=1h`);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ versionId: production, status: 'production', window: '1h', labelledPredictions: 480 });
    const click = body.tasks.click;
    expect(click).toMatchObject({ type: 'binary', count: USERS * ITEMS.length });
    // The tiny model is weak (its offline AUC is ~0.55); the policy e2e uses trained-longer ones.
    for (const metric of ['auc', 'gauc', 'meanPrediction', 'labelRate']) {
      expect(click[metric]).toBeGreaterThan(0);
      expect(click[metric]).toBeLessThan(1);
    }
    expect(click.gaucGroups).toBeGreaterThan(0);
    expect(click.logloss).toBeGreaterThan(0);
    expect(body.tasks.watch_time).toMatchObject({ type: 'regression', count: USERS * ITEMS.length });
    expect(body.tasks.watch_time.rmse).toBeGreaterThan(0);
  });

  it('compares two versions on the same requests with a paired DeLong test', async () => {
    const response = await get(`/admin/models/compare-live?a=${production}&b=${candidate}&window=30m`);
    expect(response.statusCode).toBe(200);
    const { a, b, aucTests } = response.json();
    expect(a.versionId).toBe(production);
    expect(b).toMatchObject({ versionId: candidate, status: 'shadow' });
    expect(Object.keys(aucTests).sort()).toEqual(['click', 'like']);
    expect(aucTests.click).toMatchObject({ paired: true, count: USERS * ITEMS.length });
    expect(aucTests.click.difference).toBeCloseTo(b.tasks.click.auc - a.tasks.click.auc, 10);
    expect(aucTests.click.pValue).toBeGreaterThanOrEqual(0);
    expect(aucTests.click.pValue).toBeLessThanOrEqual(1);
  });

  it('exports the online metrics and the log counters to Prometheus', async () => {
    await app.get(LiveMetricsGauges).refresh(); // a scrape reads what the background refresh computed
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(
      new RegExp(`live_model_metric\\{role="production",version="${production}",task="click",metric="auc"\\} 0\\.\\d+`),
    );
    expect(text).toMatch(
      new RegExp(`live_model_metric\\{role="shadow",version="${candidate}",task="click",metric="count"\\} 480`),
    );
    expect(text).toMatch(/prediction_log_rows_total\{outcome="written"\} \d+/);
    expect(text).toMatch(/shadow_requests_total\{outcome="scored"\} 40/);
  });

  it('answers 400 naming the field for a bad window or percent, 404 for an unknown version, 409 for a wrong status', async () => {
    const bad = await get(`/admin/models/${production}/live-metrics?window=soon`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].field).toBe('window');
    expect((await post(`/admin/models/${candidate}/shadow`, { percent: 101 })).json().errors[0].field).toBe('percent');
    expect((await get('/admin/models/9999/live-metrics')).statusCode).toBe(404);
    const conflict = await post(`/admin/models/${production}/shadow`, { percent: 10 });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().message).toMatch(/only a candidate can become the shadow/);
  });

  it('stops the shadow on a DELETE: a candidate again, scoring nothing; a second one is a 409', async () => {
    const stop = () => app.inject({ method: 'DELETE', url: `/admin/models/${candidate}/shadow`, headers: auth });
    const stopped = await stop();
    expect(stopped.statusCode).toBe(200);
    expect(stopped.json()).toMatchObject({
      event: { action: 'shadow', fromVersionId: candidate, toVersionId: null, percent: null },
      shadow: null,
    });
    await app.get(ModelLifecycleService).refresh();
    expect(app.get(ModelLifecycleService).current()).toMatchObject({ shadow: undefined, shadowPercent: 0 });
    const again = await stop();
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toMatch(/is a candidate; only the shadow can stop shadowing/);
    // Back as it was for the next case.
    expect((await post(`/admin/models/${candidate}/shadow`, { percent: 100 })).statusCode).toBe(200);
  });

  it('promotes the shadow to canary, which stops its background scoring', async () => {
    const response = await post(`/admin/models/${candidate}/canary`, { percent: 50 });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      canary: { id: candidate, status: 'canary', canaryPercent: 50, shadowPercent: null },
      shadow: null,
    });
    await app.get(ModelLifecycleService).refresh();
    expect(app.get(ModelLifecycleService).current()).toMatchObject({ shadow: undefined, shadowPercent: 0 });
  });

  it('keeps day partitions ahead and drops those past the retention', async () => {
    const repository = app.get(PredictionLogRepository);
    const old = new Date(Date.now() - 40 * 86_400_000);
    const made = await repository.maintainPartitions(old, 0, old);
    expect(made.created).toEqual([`prediction_log_${old.toISOString().slice(0, 10).replaceAll('-', '')}`]);
    const { created, dropped } = await repository.maintainPartitions(
      new Date(),
      3,
      new Date(Date.now() - 14 * 86_400_000),
    );
    expect(dropped).toEqual(made.created);
    expect(created.length).toBeLessThanOrEqual(4);
    const partitions: { name: string }[] = await dataSource.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'prediction_log'`,
    );
    expect(partitions).toHaveLength(4);
  });
});
