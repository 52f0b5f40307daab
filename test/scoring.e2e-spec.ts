import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { REDIS } from '@app/redis';

import { PredictionLogWriter } from '../apps/api/src/live/prediction-log.writer';
import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import type { DegradedScoreResponseDto, ScoredItemDto, ScoreResponseDto } from '../apps/api/src/scoring/dto/score.dto';
import { ScoringAdmission } from '../apps/api/src/scoring/scoring.admission';
import { createApiApp } from './api-app.factory';
import { seedModelVersion, TINY_SPEC, tinyItem, tinyUser } from './fixtures/model.fixture';

const TASKS = TINY_SPEC.tasks.map((t) => t.name);
const DEFAULT_WEIGHTS = Object.fromEntries(TINY_SPEC.tasks.map((t) => [t.name, t.weight]));
const ITEMS = Array.from({ length: 20 }, (_, i) => `item-${i}`);
/** The admission bound of this app: two requests of 20 candidates. */
const MAX_ROWS_IN_FLIGHT = 40;

describe('POST /v1/score (e2e)', () => {
  let app: NestFastifyApplication;
  let dataSource: DataSource;
  let versionId: number;

  const score = (payload: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/score', payload, headers });
  const scored = async (payload: object): Promise<ScoreResponseDto> => {
    const response = await score(payload);
    expect(response.statusCode).toBe(200);
    return response.json<ScoreResponseDto>();
  };
  const byId = (items: ScoredItemDto[]) => new Map(items.map((item) => [item.itemId, item]));
  /** The fields a 400 names. */
  const rejectedFields = async (payload: object): Promise<string[]> => {
    const response = await score(payload);
    expect(response.statusCode).toBe(400);
    return response.json<{ errors: { field: string }[] }>().errors.map((e) => e.field);
  };

  /** A series of /metrics, summed over its label sets matching `labels`. */
  const metric = async (name: string, labels = ''): Promise<number> => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .filter((line) => line.includes(labels))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  };

  beforeAll(async () => {
    // Every scored request is logged, so that the log shows which requests were scored and which were not.
    app = await createApiApp({
      SCORE_DEADLINE_MAX_MS: '5000',
      SCORE_DEADLINE_MS: '5000',
      SCORE_MAX_ROWS_IN_FLIGHT: String(MAX_ROWS_IN_FLIGHT),
      PREDICTION_LOG_SAMPLE: '1',
    });
    dataSource = app.get(DataSource);
    await dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features CASCADE');
    await app.get<Redis>(REDIS).flushdb();
    // The app loaded whatever an earlier spec left in the database; make it see the emptied tables.
    await app.get(ModelLifecycleService).refresh();
  });

  afterAll(async () => {
    await dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features CASCADE');
    await app.close();
  });

  it('answers 503 while no production model is loaded', async () => {
    const response = await score({ userId: 'user-1', itemIds: ['item-1'] });
    expect(response.statusCode).toBe(503);
    expect(response.json().message).toMatch(/no production model/);
  });

  describe('with a production model', () => {
    beforeAll(async () => {
      versionId = await seedModelVersion(dataSource, 'production');
      await app.get(ModelLifecycleService).refresh();
      await app.inject({ method: 'PUT', url: '/v1/users/user-1/features', payload: { features: tinyUser(1) } });
      const entities = ITEMS.map((id, i) => ({ id, features: tinyItem(i) }));
      expect((await app.inject({ method: 'PUT', url: '/v1/items/features', payload: { entities } })).statusCode).toBe(
        200,
      );
    });

    it('scores every candidate on every task, ranked by the default blend', async () => {
      const response = await score({ userId: 'user-1', itemIds: ITEMS }, { 'x-request-id': 'rank-1' });
      expect(response.statusCode).toBe(200);
      const body = response.json<ScoreResponseDto>();
      expect(body).toMatchObject({
        requestId: 'rank-1',
        modelVersion: versionId,
        modelRole: 'production',
        fusion: { type: 'sum', source: 'model' },
      });
      expect(body.userUnknown).toBeUndefined();
      expect(body.items.map((i) => i.itemId).sort()).toEqual([...ITEMS].sort());
      for (const item of body.items) {
        expect(Object.keys(item.scores)).toEqual(TASKS);
        expect(item.unknown).toBeUndefined();
        expect(item.gates).toBeUndefined();
        const blend = TASKS.reduce((sum, task) => sum + DEFAULT_WEIGHTS[task] * item.scores[task], 0);
        expect(item.score).toBeCloseTo(blend, 5);
      }
      const scores = body.items.map((i) => i.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(new Set(scores).size).toBeGreaterThan(1);
    });

    it('blends with the objectiveWeights of the request, a task left out weighing 0', async () => {
      const body = await scored({ userId: 'user-1', itemIds: ITEMS, objectiveWeights: { like: 2 } });
      for (const item of body.items) expect(item.score).toBeCloseTo(2 * item.scores.like, 5);
      const likes = body.items.map((i) => i.scores.like);
      expect(likes).toEqual([...likes].sort((a, b) => b - a));
      expect(body.fusion).toEqual({ type: 'sum', source: 'request' });
    });

    it("ranks by the request's product fusion, a regression task through its transform, and says so", async () => {
      const fusion = {
        type: 'product',
        exponents: { click: 1, like: 0.5, watch_time: 0.2 },
        transforms: { watch_time: 'log1p' },
      };
      const body = await scored({ userId: 'user-1', itemIds: ITEMS, fusion });
      expect(body.fusion).toEqual({ type: 'product', source: 'request' });
      for (const { score, scores } of body.items) {
        const product = scores.click * Math.sqrt(scores.like) * (1 + Math.max(scores.watch_time, 0)) ** 0.2;
        expect(score).toBeCloseTo(product, 5);
      }
      const fused = body.items.map((i) => i.score);
      expect(fused).toEqual([...fused].sort((a, b) => b - a));
    });

    it("ranks by the version's own product rule once its rollout sets one", async () => {
      const fusion = { type: 'product', exponents: { click: 1, watch_time: 1 }, transforms: { watch_time: 'log1p' } };
      await dataSource.query('UPDATE model_versions SET fusion = $1 WHERE id = $2', [fusion, versionId]);
      await app.get(ModelLifecycleService).refresh();
      try {
        const body = await scored({ userId: 'user-1', itemIds: ITEMS });
        expect(body.fusion).toEqual({ type: 'product', source: 'model' });
        for (const { score, scores } of body.items) {
          expect(score).toBeCloseTo(scores.click * (1 + Math.max(scores.watch_time, 0)), 4);
        }
      } finally {
        await dataSource.query('UPDATE model_versions SET fusion = NULL WHERE id = $1', [versionId]);
        await app.get(ModelLifecycleService).refresh();
      }
    });

    it('explains each task with its gate weights over the experts, summing to 1', async () => {
      const body = await scored({ userId: 'user-1', itemIds: ITEMS.slice(0, 5), explain: true });
      for (const item of body.items) {
        expect(Object.keys(item.gates!)).toEqual(TASKS);
        for (const weights of Object.values(item.gates!)) {
          expect(weights).toHaveLength(TINY_SPEC.model.experts);
          expect(weights.reduce((s, w) => s + w, 0)).toBeCloseTo(1, 5);
        }
      }
    });

    it('flags an unknown user and unknown items and still scores them', async () => {
      const body = await scored({ userId: 'nobody', itemIds: ['item-1', 'ghost'] });
      expect(body.userUnknown).toBe(true);
      const items = byId(body.items);
      expect(items.get('ghost')).toMatchObject({ unknown: true, scores: expect.any(Object) });
      expect(items.get('item-1')!.unknown).toBeUndefined();
      for (const item of body.items) for (const task of TASKS) expect(Number.isFinite(item.scores[task])).toBe(true);
    });

    it('sees a feature update on the next score', async () => {
      const before = byId((await scored({ userId: 'user-1', itemIds: ITEMS })).items).get('item-3')!;
      const update = await app.inject({
        method: 'PUT',
        url: '/v1/items/item-3/features',
        payload: { features: { item_genre: 'g5', item_price: 90 } },
      });
      expect(update.statusCode).toBe(200);
      const after = byId((await scored({ userId: 'user-1', itemIds: ITEMS })).items).get('item-3')!;
      expect(after.scores).not.toEqual(before.scores);
    });

    it('scores a stored value of the wrong type as missing instead of failing', async () => {
      await app.inject({
        method: 'PUT',
        url: '/v1/items/odd/features',
        payload: { features: { item_genre: 'g1', item_price: 'cheap' } },
      });
      await app.inject({ method: 'PUT', url: '/v1/items/plain/features', payload: { features: { item_genre: 'g1' } } });
      const items = byId((await scored({ userId: 'user-1', itemIds: ['odd', 'plain'] })).items);
      expect(items.get('odd')!.scores).toEqual(items.get('plain')!.scores);
    });

    it("takes user-side features from the user and the context only, never from an item's record", async () => {
      await app.inject({
        method: 'PUT',
        url: '/v1/items/claims-user/features',
        payload: { features: { item_genre: 'g1', user_age: 5, user_segment: 's9', user_recent_genres: ['g1'] } },
      });
      await app.inject({ method: 'PUT', url: '/v1/items/plain/features', payload: { features: { item_genre: 'g1' } } });
      const items = byId((await scored({ userId: 'user-1', itemIds: ['claims-user', 'plain'] })).items);
      expect(items.get('claims-user')!.scores).toEqual(items.get('plain')!.scores);
    });

    it('lets request context fill features the stored ones lack, and stored ones win on a clash', async () => {
      const stored = byId((await scored({ userId: 'user-1', itemIds: ['item-2', 'ghost'] })).items);
      const withContext = byId(
        (await scored({ userId: 'user-1', itemIds: ['item-2', 'ghost'], context: { item_price: 50, user_age: 99 } }))
          .items,
      );
      expect(withContext.get('item-2')!.scores).toEqual(stored.get('item-2')!.scores);
      expect(withContext.get('ghost')!.scores).not.toEqual(stored.get('ghost')!.scores);
    });

    it('rejects duplicate, too many or no itemIds with a 400 naming itemIds', async () => {
      expect(await rejectedFields({ userId: 'user-1', itemIds: ['item-1', 'item-1'] })).toContain('itemIds');
      expect(
        await rejectedFields({ userId: 'user-1', itemIds: Array.from({ length: 1001 }, (_, i) => `i${i}`) }),
      ).toContain('itemIds');
      expect(await rejectedFields({ userId: 'user-1', itemIds: [] })).toContain('itemIds');
    });

    it('rejects ids Postgres could not store (NUL characters) with a 400, not a failed query', async () => {
      expect(await rejectedFields({ userId: 'user\u0000-1', itemIds: ['item-1'] })).toEqual(['userId']);
      expect(await rejectedFields({ userId: 'user-1', itemIds: ['item-1', 'item\u0000-2'] })).toEqual(['itemIds.1']);
    });

    it('rejects an objective the model does not have, a bad context and unknown fields', async () => {
      expect(
        await rejectedFields({ userId: 'user-1', itemIds: ['item-1'], objectiveWeights: { click: 1, revenue: 1 } }),
      ).toEqual(['objectiveWeights.revenue']);
      expect(
        await rejectedFields({ userId: 'user-1', itemIds: ['item-1'], objectiveWeights: { click: 'high' } }),
      ).toEqual(['objectiveWeights.click']);
      expect(
        await rejectedFields({
          userId: 'user-1',
          itemIds: ['item-1'],
          fusion: { type: 'product', exponents: { click: 1, watch_time: 1, revenue: 2 } },
        }),
      ).toEqual(['fusion.exponents.revenue', 'fusion.transforms.watch_time']);
      expect(
        await rejectedFields({ userId: 'user-1', itemIds: ['item-1'], fusion: { type: 'sum' }, objectiveWeights: {} }),
      ).toEqual(['fusion']);
      expect(
        await rejectedFields({ userId: 'user-1', itemIds: ['item-1'], context: { device: { os: 'ios' } } }),
      ).toEqual(['context.device']);
      // A problem of the map itself names the map.
      expect(await rejectedFields({ userId: 'user-1', itemIds: ['item-1'], context: ['mobile'] })).toEqual(['context']);
      expect(await rejectedFields({ userId: '', itemIds: ['item-1'], limit: 3 })).toEqual(
        expect.arrayContaining(['userId', 'limit']),
      );
    });

    it('has no conditional scores without a conditional task', async () => {
      const body = await scored({ userId: 'user-1', itemIds: ITEMS.slice(0, 3) });
      for (const item of body.items) expect(item.conditional).toBeUndefined();
    });

    describe('deadlines and admission', () => {
      let held = 0;
      /** Ids no store has yet: their features are read from Postgres, where holdItemReads() can hold them. */
      const fresh = (n: number) => Array.from({ length: n }, () => `held-${held++}`);
      /** Holds every read of item_features until release(): a request reading one waits, after its admission. */
      const holdItemReads = async () => {
        const runner = dataSource.createQueryRunner();
        await runner.connect();
        await runner.startTransaction();
        await runner.query('LOCK TABLE item_features IN ACCESS EXCLUSIVE MODE');
        return async () => {
          await runner.rollbackTransaction();
          await runner.release();
        };
      };
      const until = async (what: string, condition: () => Promise<boolean>) => {
        for (let i = 0; !(await condition()); i++) {
          if (i > 500) throw new Error(`waited 10 s for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      /** Rows the prediction log has taken so far (written, dropped or failed), once everything queued is flushed. */
      const loggedRows = async () => {
        await app.get(PredictionLogWriter).flush();
        return metric('prediction_log_rows_total');
      };

      it('answers 400 naming x-request-deadline-ms for a deadline that is not 1 to SCORE_DEADLINE_MAX_MS ms', async () => {
        for (const deadline of ['0', 'soon', '5001']) {
          const response = await score(
            { userId: 'user-1', itemIds: ['item-1'] },
            { 'x-request-deadline-ms': deadline },
          );
          expect(response.statusCode).toBe(400);
          expect(response.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toEqual([
            'x-request-deadline-ms',
          ]);
        }
        expect(
          (await score({ userId: 'user-1', itemIds: ['item-1'] }, { 'x-request-deadline-ms': '5000' })).statusCode,
        ).toBe(200);
        const degraded = await score({ userId: 'user-1', itemIds: ['item-1'] }, { 'x-allow-degraded': 'yes' });
        expect(degraded.statusCode).toBe(400);
        expect(degraded.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toEqual([
          'x-allow-degraded',
        ]);
      });

      it('learns the size of a candidate from the bodies it scores, to price a request before reading its body', async () => {
        const observed = jest.spyOn(app.get(ScoringAdmission), 'observeBody');
        try {
          const body = { userId: 'user-1', itemIds: ITEMS };
          expect((await score(body)).statusCode).toBe(200);
          expect(observed).toHaveBeenCalledWith(Buffer.byteLength(JSON.stringify(body)), ITEMS.length);
        } finally {
          observed.mockRestore();
        }
      });

      it('refuses as it arrives, before reading the body, what the inference queued alone would make late', async () => {
        await scored({ userId: 'user-1', itemIds: ITEMS }); // a timed pass: the pool can estimate
        // Both inference threads busy with a long run each: a request given 1 ms could not even start in time.
        const { scorer, encoder } = app.get(ModelLifecycleService).current().production!;
        const rows = encoder.encodeRecords(
          Array.from({ length: 100_000 }, (_, i) => ({ ...tinyUser(1), ...tinyItem(i) })),
        );
        const shed = await metric('score_requests_shed_total', 'reason="overloaded",answer="refused"');
        const busy = [scorer.score(rows), scorer.score(rows)];
        try {
          // Not JSON: read, this body would be a 400. Refused on arrival, it is never read.
          const refused = await app.inject({
            method: 'POST',
            url: '/v1/score',
            payload: '{"userId": ',
            headers: { 'content-type': 'application/json', 'x-request-deadline-ms': '1' },
          });
          expect(refused.statusCode).toBe(503);
          // Retry-After: the seconds the queued work is expected to take, at least 1.
          const retryAfter = Number(refused.headers['retry-after']);
          expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
          expect(refused.json()).toMatchObject({
            message: expect.stringMatching(/^overloaded/),
            retryAfterSeconds: retryAfter,
          });
          // So is a caller's explicit refusal of a degraded answer.
          const optedOut = await app.inject({
            method: 'POST',
            url: '/v1/score',
            payload: '{"userId": ',
            headers: { 'content-type': 'application/json', 'x-request-deadline-ms': '1', 'x-allow-degraded': 'false' },
          });
          expect(optedOut.statusCode).toBe(503);
          expect(await metric('score_requests_shed_total', 'reason="overloaded",answer="refused"')).toBe(shed + 2);
        } finally {
          await Promise.all(busy);
        }
      });

      it('drops a request whose deadline passes before inference: 504, never computed, nothing logged', async () => {
        const deadlineMs = 50;
        const [runs, logged] = [await metric('inference_runs_total'), await loggedRows()];
        const failed = await metric('scoring_model_requests_total', 'outcome="failed"');
        const release = await holdItemReads();
        const late = score({ userId: 'user-1', itemIds: fresh(3) }, { 'x-request-deadline-ms': String(deadlineMs) });
        try {
          await until('the request to be admitted', async () => (await metric('score_rows_in_flight')) === 3);
          // Admitted and held in its feature read: its deadline passes there.
          await new Promise((resolve) => setTimeout(resolve, deadlineMs + 10));
        } finally {
          await release();
        }
        const response = await late;
        expect(response.statusCode).toBe(504);
        expect(response.json().message).toMatch(/deadline passed before inference/);
        expect(await metric('inference_runs_total')).toBe(runs);
        expect(await metric('score_requests_shed_total', 'reason="deadline",answer="refused"')).toBe(1);
        expect(await loggedRows()).toBe(logged);
        expect(await metric('score_rows_in_flight')).toBe(0);
        // Not the model's failure either (the rollout policy's serving guardrails read these).
        expect(await metric('scoring_model_requests_total', 'outcome="failed"')).toBe(failed);
      });

      it('refuses a burst beyond its bound at once with 503 and Retry-After, while the admitted ones succeed', async () => {
        const [rows, logged] = [await metric('inference_rows_total'), await loggedRows()];
        const failed = await metric('scoring_model_requests_total', 'outcome="failed"');
        const shed = (answer: string) => metric('score_requests_shed_total', `reason="overloaded",answer="${answer}"`);
        const [refusedBefore, degradedBefore] = [await shed('refused'), await shed('degraded')];
        const release = await holdItemReads();
        let admitted: Promise<{ statusCode: number; json: () => ScoreResponseDto }>[] = [];
        try {
          admitted = [score({ userId: 'user-1', itemIds: fresh(20) }), score({ userId: 'user-2', itemIds: fresh(20) })];
          await until('two requests to be admitted', async () => (await metric('score_rows_in_flight')) === 40);
          // The bound is reached and the admitted requests wait on their read: the burst is answered meanwhile.
          const refused = await Promise.all([1, 2, 3].map(() => score({ userId: 'user-3', itemIds: fresh(5) })));
          for (const response of refused) {
            expect(response.statusCode).toBe(503);
            expect(response.headers['retry-after']).toBe('1');
            expect(response.json().message).toMatch(/^overloaded/);
          }
          const degradedIds = fresh(4);
          const degraded = await score({ userId: 'user-3', itemIds: degradedIds }, { 'x-allow-degraded': 'true' });
          expect(degraded.statusCode).toBe(200);
          expect(degraded.json<DegradedScoreResponseDto>()).toEqual({
            requestId: expect.any(String),
            degraded: true,
            degradedReason: 'overloaded',
            items: degradedIds.map((itemId) => ({ itemId })),
          });
          expect(await shed('refused')).toBe(refusedBefore + 3);
          expect(await shed('degraded')).toBe(degradedBefore + 1);
        } finally {
          await release();
        }
        for (const response of await Promise.all(admitted)) {
          expect(response.statusCode).toBe(200);
          expect(response.json().items).toHaveLength(20);
        }
        // Only the admitted requests were computed and logged; the refused ones are no model's failure.
        expect(await metric('inference_rows_total')).toBe(rows + 40);
        expect(await loggedRows()).toBe(logged + 40);
        expect(await metric('scoring_model_requests_total', 'outcome="failed"')).toBe(failed);
      });
    });
  });

  describe('with an ESMM production model (like conditional on click)', () => {
    beforeAll(async () => {
      await dataSource.query('TRUNCATE model_versions, rollout_events CASCADE');
      versionId = await seedModelVersion(dataSource, 'production', { training: { esmm: true } });
      await app.get(ModelLifecycleService).refresh();
    });

    it('scores the joint event under scores and P(like | click) under conditional', async () => {
      const body = await scored({ userId: 'user-1', itemIds: ITEMS });
      expect(body.modelVersion).toBe(versionId);
      for (const item of body.items) {
        expect(Object.keys(item.conditional!)).toEqual(['like']);
        expect(item.scores.like).toBeCloseTo(item.scores.click * item.conditional!.like, 6);
        expect(item.conditional!.like).toBeGreaterThan(item.scores.like);
      }
    });
  });

  describe('with an AITM production model (like a funnel step after click)', () => {
    beforeAll(async () => {
      await dataSource.query('TRUNCATE model_versions, rollout_events CASCADE');
      versionId = await seedModelVersion(dataSource, 'production', { training: { aitm: true } });
      await app.get(ModelLifecycleService).refresh();
    });

    it('scores each step over every impression and explains P(like | click) = P(like) / P(click) under conditional', async () => {
      const body = await scored({ userId: 'user-1', itemIds: ITEMS });
      expect(body.modelVersion).toBe(versionId);
      for (const item of body.items) {
        expect(Object.keys(item.conditional!)).toEqual(['like']);
        expect(item.conditional!.like).toBeCloseTo(Math.min(1, item.scores.like / item.scores.click), 5);
      }
    });
  });
});
