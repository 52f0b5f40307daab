import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { REDIS } from '@app/redis';
import { MODELS_CHANGED_CHANNEL } from '@app/registry';

import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import type { ModelLease } from '../apps/api/src/models/serving-model';
import { createApiApp } from './api-app.factory';
import { seedModelVersion, tinyArtifact, tinyItem, tinyUser } from './fixtures/model.fixture';

const TOKEN = 'rollout-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Scores 50 candidates the way a request does: on the leased model, whatever the lifecycle swaps meanwhile. */
async function scoreWith(lease: ModelLease): Promise<Float32Array[]> {
  const records = Array.from({ length: 50 }, (_, i) => ({ ...tinyUser(7), ...tinyItem(i) }));
  return (await lease.model.scorer.score(lease.model.encoder.encodeRecords(records))).scores;
}

describe('rollout (e2e)', () => {
  // Two API processes that only learn about changes from the models:changed notice, and one that only polls.
  let app: NestFastifyApplication;
  let replica: NestFastifyApplication;
  let poller: NestFastifyApplication;
  let dataSource: DataSource;
  const lifecycleOf = (a: NestFastifyApplication) => a.get(ModelLifecycleService);
  const servedBy = (a: NestFastifyApplication) => {
    const { production, canary } = lifecycleOf(a).current();
    return { production: production?.versionId, canary: canary?.versionId };
  };
  const post = (url: string, payload?: object) =>
    app.inject({ method: 'POST', url, headers: auth, ...(payload ? { payload } : {}) });

  let production: number;
  let candidate: number;

  beforeAll(async () => {
    [app, replica, poller] = await Promise.all([
      createApiApp({ ADMIN_TOKEN: TOKEN, MODEL_POLL_SECONDS: '3600' }),
      createApiApp({ ADMIN_TOKEN: TOKEN, MODEL_POLL_SECONDS: '3600' }),
      createApiApp({ ADMIN_TOKEN: TOKEN, MODEL_POLL_SECONDS: '0.2' }),
    ]);
    dataSource = app.get(DataSource);
    await dataSource.query('TRUNCATE model_versions, rollout_events RESTART IDENTITY CASCADE');
    production = await seedModelVersion(dataSource, 'production', { seed: 1 });
    await Promise.all([app, replica, poller].map((a) => lifecycleOf(a).refresh()));
    const registered = await post('/admin/models', { artifact: (await tinyArtifact(2)).artifact.toString('base64') });
    candidate = registered.json().id;
  });

  afterAll(() => Promise.all([app, replica, poller].map((a) => a.close())));

  it('serves the production version loaded at boot, with ONNX Runtime', () => {
    for (const a of [app, replica, poller]) expect(servedBy(a)).toEqual({ production, canary: undefined });
    expect(lifecycleOf(app).current().production?.scorer.engine).toBe('onnxruntime');
  });

  it('sends ~percent of users to the canary, each user always to the same side, in every process', async () => {
    const response = await post(`/admin/models/${candidate}/canary`, { percent: 30, objectiveWeights: { like: 1 } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      event: { action: 'canary', actor: 'admin', fromVersionId: null, toVersionId: candidate, percent: 30 },
      production: { id: production, status: 'production' },
      canary: {
        id: candidate,
        status: 'canary',
        canaryPercent: 30,
        objectiveWeights: { click: 1, like: 1, watch_time: 0.01 },
      },
    });
    await waitFor(
      'both notified processes to load the canary',
      () => servedBy(app).canary === candidate && servedBy(replica).canary === candidate,
    );
    expect(lifecycleOf(app).current()).toMatchObject({
      canaryPercent: 30,
      canary: { role: 'canary', fusion: { rule: { type: 'sum', weights: { click: 1, like: 1, watch_time: 0.01 } } } },
    });

    const sides = (a: NestFastifyApplication) =>
      Array.from({ length: 10_000 }, (_, i) => {
        const lease = lifecycleOf(a).acquire(`user-${i}`)!;
        lease.release();
        return lease.model.versionId;
      });
    const here = sides(app);
    const share = here.filter((v) => v === candidate).length / here.length;
    expect(share).toBeGreaterThan(0.28);
    expect(share).toBeLessThan(0.32);
    expect(sides(app)).toEqual(here);
    expect(sides(replica)).toEqual(here);
  });

  it('promotes the canary in every process, with requests succeeding throughout', async () => {
    let stop = false;
    let served = 0;
    const traffic = (async () => {
      while (!stop) {
        const lease = lifecycleOf(app).acquire(`user-${served}`)!;
        try {
          expect((await scoreWith(lease))[0]).toHaveLength(50);
          served++;
        } finally {
          lease.release();
        }
      }
    })();

    try {
      const response = await post('/admin/models/promote', { versionId: candidate });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        event: { action: 'promote', fromVersionId: production, toVersionId: candidate, percent: null },
        production: { id: candidate, status: 'production', canaryPercent: null, promotedAt: expect.any(String) },
        canary: null,
      });
      await waitFor('the promotion everywhere', () =>
        [app, replica, poller].every((a) => servedBy(a).production === candidate && servedBy(a).canary === undefined),
      );

      const rollback = await post('/admin/models/rollback');
      expect(rollback.statusCode).toBe(200);
      expect(rollback.json()).toMatchObject({
        event: { action: 'rollback', fromVersionId: candidate, toVersionId: production },
        production: { id: production },
      });
      await waitFor('the rollback everywhere', () =>
        [app, replica, poller].every((a) => servedBy(a).production === production),
      );
    } finally {
      stop = true;
      await traffic;
    }
    expect(served).toBeGreaterThan(0);

    const versions = (await app.inject({ method: 'GET', url: '/admin/models', headers: auth })).json();
    expect(versions.map((v: { id: number; status: string }) => [v.id, v.status])).toEqual([
      [candidate, 'archived'],
      [production, 'production'],
    ]);
  });

  it('answers 409 with the reason for invalid transitions, 404 for unknown versions', async () => {
    const failed = await seedModelVersion(dataSource, 'failed');
    const fresh = await seedModelVersion(dataSource, 'candidate');
    const cases: [string, object | undefined, number, string | RegExp][] = [
      ['/admin/models/promote', undefined, 409, /^there is no canary to promote/],
      [
        '/admin/models/promote',
        { versionId: fresh },
        409,
        `version ${fresh} is a candidate; only the canary can be promoted`,
      ],
      [
        `/admin/models/${candidate}/canary`,
        { percent: 10 },
        409,
        `version ${candidate} is archived; only a candidate or the shadow can become the canary`,
      ],
      [
        `/admin/models/${production}/canary`,
        { percent: 10 },
        409,
        `version ${production} is in production; only a candidate or the shadow can become the canary`,
      ],
      [
        `/admin/models/${failed}/canary`,
        { percent: 10 },
        409,
        `version ${failed} is a failed version; failed versions can only be archived`,
      ],
      [
        `/admin/models/${production}/archive`,
        undefined,
        409,
        /^version \d+ is in production; promote another version or roll back/,
      ],
      [
        '/admin/models/rollback',
        undefined,
        409,
        `version ${production} was not promoted over another version; there is nothing to roll back to`,
      ],
      ['/admin/models/9999/canary', { percent: 10 }, 404, 'version 9999 does not exist'],
      ['/admin/models/9999/archive', undefined, 404, 'version 9999 does not exist'],
    ];
    for (const [url, payload, status, message] of cases) {
      const response = await post(url, payload);
      expect({ url, status: response.statusCode }).toEqual({ url, status });
      expect(response.json().message).toMatch(message);
    }
    expect((await post(`/admin/models/${failed}/archive`)).json()).toMatchObject({
      event: { action: 'archive', fromVersionId: failed, toVersionId: null },
    });
    expect((await post(`/admin/models/${fresh}/archive`)).statusCode).toBe(200);
    expect((await post(`/admin/models/${fresh}/archive`)).statusCode).toBe(409);
  });

  it('keeps every action in the rollout history, newest first, paginated', async () => {
    const all = (await app.inject({ method: 'GET', url: '/admin/rollouts', headers: auth })).json();
    expect(all.total).toBe(6);
    expect(all.items.map((e: { action: string }) => e.action)).toEqual([
      'archive',
      'archive',
      'rollback',
      'promote',
      'canary',
      'register',
    ]);
    expect(
      all.items.every(
        (e: { actor: string; createdAt: string }) => e.actor === 'admin' && !Number.isNaN(Date.parse(e.createdAt)),
      ),
    ).toBe(true);
    const page = (await app.inject({ method: 'GET', url: '/admin/rollouts?limit=2&offset=2', headers: auth })).json();
    expect(page).toMatchObject({
      total: 6,
      limit: 2,
      offset: 2,
      items: [{ action: 'rollback' }, { action: 'promote' }],
    });
    expect((await app.inject({ method: 'GET', url: '/admin/rollouts?limit=0', headers: auth })).statusCode).toBe(400);
  });

  it('lets a request finish on the model it leased across a swap, then disposes that model', async () => {
    const lease = lifecycleOf(app).acquire('user-1')!;
    expect(lease.model.versionId).toBe(production);
    const dispose = jest.spyOn(lease.model.scorer, 'dispose');
    const before = await scoreWith(lease);

    const next = await seedModelVersion(dataSource, 'candidate', { seed: 2, withoutOnnx: true });
    expect((await post(`/admin/models/${next}/canary`, { percent: 0 })).statusCode).toBe(200);
    expect((await post('/admin/models/promote')).statusCode).toBe(200);
    await waitFor('the swap', () => servedBy(app).production === next);
    expect(lifecycleOf(app).current().production?.scorer.engine).toBe('onnxruntime'); // no ONNX stored: exported at load

    expect(lease.model.versionId).toBe(production);
    expect(await scoreWith(lease)).toEqual(before);
    expect(dispose).not.toHaveBeenCalled();
    lease.release();
    lease.release(); // idempotent
    await waitFor('the old model to be disposed', () => dispose.mock.calls.length === 1);
    const after = lifecycleOf(app).acquire('user-1')!;
    expect(after.model.versionId).toBe(next);
    after.release();
  });

  it('switches on a models:changed notice, and without one at the next poll', async () => {
    // The last test's promotion reached every process first: a reload of it still under way when the row below is
    // written would read that row, as a notice would.
    const { production: current } = servedBy(app);
    await waitFor('every process on the last change', () =>
      [replica, poller].every((a) => servedBy(a).production === current),
    );
    // A change written behind the registry's back: only the polling process can notice it by itself.
    const percent = await dataSource.query(
      `UPDATE model_versions SET canary_percent = 100, status = 'canary' WHERE id = $1 RETURNING id`,
      [candidate],
    );
    expect(percent[0]).toHaveLength(1);
    await waitFor('the poll', () => servedBy(poller).canary === candidate);
    expect(servedBy(app).canary).toBeUndefined();
    expect(servedBy(replica).canary).toBeUndefined();

    await app
      .get<Redis>(REDIS)
      .publish(MODELS_CHANGED_CHANNEL, JSON.stringify({ action: 'canary', versionId: candidate }));
    await waitFor('the notice', () => servedBy(app).canary === candidate && servedBy(replica).canary === candidate);
    const lease = lifecycleOf(replica).acquire('anyone')!;
    expect(lease.model.versionId).toBe(candidate); // 100 %: every user
    lease.release();
  });

  it('serializes concurrent transitions instead of failing one on the one-canary index', async () => {
    const [x, y] = await Promise.all([
      seedModelVersion(dataSource, 'candidate'),
      seedModelVersion(dataSource, 'candidate'),
    ]);
    const responses = await Promise.all([
      post(`/admin/models/${x}/canary`, { percent: 5 }),
      post(`/admin/models/${y}/canary`, { percent: 5 }),
    ]);
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200]);
    const statuses = await dataSource.query(
      `SELECT id, status FROM model_versions WHERE id IN ($1, $2, $3) ORDER BY id`,
      [candidate, x, y],
    );
    expect(statuses.filter((r: { status: string }) => r.status === 'canary')).toHaveLength(1);
    expect(statuses.filter((r: { status: string }) => r.status === 'candidate')).toHaveLength(2);
  });

  it('serves a version in int8 only once its holdout check allows it, in every process, and back in fp32', async () => {
    const current = lifecycleOf(app).current().production!.versionId;
    const precisionOf = (a: NestFastifyApplication) => lifecycleOf(a).current().production?.precision;
    // Production's own scores (a user could be routed to the canary); no swap happens while one runs.
    const scores = async () => {
      const { encoder, scorer } = lifecycleOf(app).current().production!;
      const records = Array.from({ length: 50 }, (_, i) => ({ ...tinyUser(7), ...tinyItem(i) }));
      return (await scorer.score(encoder.encodeRecords(records))).scores;
    };
    const fp32 = await scores();
    const refused = await post(`/admin/models/${current}/precision`, { precision: 'int8' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toMatch(/no int8 check on a holdout/);
    const invalid = await post(`/admin/models/${current}/precision`, { precision: 'fp16' });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().errors).toEqual([expect.objectContaining({ field: 'precision' })]);

    // A passed check, as the worker records it after training.
    const check = { auc: {}, maxAucDrop: 0.0002, tolerance: 0.001, eligible: true, rows: 500 };
    await dataSource.query(`UPDATE model_versions SET metrics = metrics || $1::jsonb WHERE id = $2`, [
      JSON.stringify({ int8: check }),
      current,
    ]);
    const switched = await post(`/admin/models/${current}/precision`, { precision: 'int8' });
    expect(switched.statusCode).toBe(200);
    expect(switched.json()).toMatchObject({ event: { action: 'precision' }, production: { servingPrecision: 'int8' } });
    await lifecycleOf(poller).refresh();
    await waitFor('int8 in every process', () => [app, replica, poller].every((a) => precisionOf(a) === 'int8'));
    const int8 = await scores();
    let worst = 0;
    for (let t = 0; t < 2; t++) for (let i = 0; i < 50; i++) worst = Math.max(worst, Math.abs(int8[t][i] - fp32[t][i]));
    expect(worst).toBeLessThan(0.01);
    expect((await post(`/admin/models/${current}/precision`, { precision: 'int8' })).statusCode).toBe(409);

    expect((await post(`/admin/models/${current}/precision`, { precision: 'fp32' })).statusCode).toBe(200);
    await lifecycleOf(poller).refresh();
    await waitFor('fp32 in every process', () => [app, replica, poller].every((a) => precisionOf(a) === 'fp32'));
    expect(await scores()).toEqual(fp32);
  });

  it('acquires nothing while there is no production version', async () => {
    await dataSource.query(
      `UPDATE model_versions SET status = 'archived', canary_percent = NULL WHERE status IN ('production', 'canary')`,
    );
    await lifecycleOf(app).refresh();
    expect(lifecycleOf(app).acquire('user-1')).toBeUndefined();
    expect(lifecycleOf(app).current()).toEqual({
      production: undefined,
      canary: undefined,
      canaryPercent: 0,
      shadow: undefined,
      shadowPercent: 0,
    });
  });
});
