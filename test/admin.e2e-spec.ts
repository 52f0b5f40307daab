import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';

import { createApiApp } from './api-app.factory';
import { tinyArtifact } from './fixtures/model.fixture';

const TOKEN = 'admin-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('admin API (e2e)', () => {
  let app: NestFastifyApplication;

  beforeAll(async () => {
    app = await createApiApp({ ADMIN_TOKEN: TOKEN });
    await app.get(DataSource).query('TRUNCATE model_versions, rollout_events RESTART IDENTITY CASCADE');
  });

  afterAll(() => app.close());

  describe('authentication', () => {
    it.each([
      ['no token', {}, 'Bearer realm="admin"'],
      [
        'a wrong token of the same length',
        { authorization: `Bearer ${'x'.repeat(TOKEN.length)}` },
        'Bearer realm="admin", error="invalid_token"',
      ],
      ['a wrong token', { authorization: 'Bearer nope' }, 'Bearer realm="admin", error="invalid_token"'],
      ['another scheme', { authorization: `Basic ${TOKEN}` }, 'Bearer realm="admin"'],
    ])('401s with %s, with a challenge', async (_, headers, challenge) => {
      for (const [method, url] of [
        ['GET', '/admin/models'],
        ['POST', '/admin/models/promote'],
        ['GET', '/admin/rollouts'],
      ] as const) {
        const response = await app.inject({ method, url, headers });
        expect(response.statusCode).toBe(401);
        expect(response.headers['www-authenticate']).toBe(challenge);
      }
    });
  });

  describe('registry', () => {
    let first: number;
    let second: number;

    it('registers a version from a CLI artifact: candidate, ONNX export, metrics from the artifact', async () => {
      const { artifact } = await tinyArtifact(1);
      const response = await app.inject({
        method: 'POST',
        url: '/admin/models',
        headers: auth,
        payload: { artifact: artifact.toString('base64'), note: 'first', objectiveWeights: { like: 2 } },
      });
      expect(response.statusCode).toBe(201);
      const body = response.json();
      expect(body).toMatchObject({
        status: 'candidate',
        note: 'first',
        hasOnnx: true,
        canaryPercent: null,
        promotedAt: null,
        parentVersionId: null,
        objectiveWeights: { click: 1, like: 2, watch_time: 0.01 },
        metrics: {
          tasks: { click: { auc: expect.any(Number) }, watch_time: { rmse: expect.any(Number) } },
          examples: 400,
        },
      });
      expect(body.artifactSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(body.onnxSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(body).not.toHaveProperty('artifact');
      first = body.id;

      const next = await app.inject({
        method: 'POST',
        url: '/admin/models',
        headers: auth,
        payload: { artifact: (await tinyArtifact(2)).artifact.toString('base64'), parentVersionId: first },
      });
      expect(next.statusCode).toBe(201);
      expect(next.json()).toMatchObject({
        parentVersionId: first,
        objectiveWeights: { click: 1, like: 0.5, watch_time: 0.01 },
      });
      second = next.json().id;
    });

    it('records the registrations in the rollout history', async () => {
      const response = await app.inject({ method: 'GET', url: '/admin/rollouts', headers: auth });
      expect(response.json()).toMatchObject({
        total: 2,
        items: [
          { action: 'register', actor: 'admin', fromVersionId: null, toVersionId: second },
          { action: 'register', actor: 'admin', toVersionId: first },
        ],
      });
    });

    it('lists versions newest first, without binaries', async () => {
      const response = await app.inject({ method: 'GET', url: '/admin/models', headers: auth });
      expect(response.statusCode).toBe(200);
      const list = response.json();
      expect(list.map((v: { id: number }) => v.id)).toEqual([second, first]);
      for (const v of list) {
        expect(Object.keys(v).sort()).toEqual(
          [
            'artifactSha256',
            'canaryPercent',
            'createdAt',
            'fusion',
            'hasOnnx',
            'id',
            'metrics',
            'note',
            'objectiveWeights',
            'onnxSha256',
            'parentVersionId',
            'promotedAt',
            'rolloutPolicy',
            'servingPrecision',
            'shadowPercent',
            'status',
            'trainingJobId',
          ].sort(),
        );
      }
    });

    it('gets one version with its spec, 404s an unknown one, 400s a bad id', async () => {
      const response = await app.inject({ method: 'GET', url: `/admin/models/${first}`, headers: auth });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        id: first,
        spec: { tasks: [{ name: 'click' }, { name: 'like' }, { name: 'watch_time' }] },
      });

      const missing = await app.inject({ method: 'GET', url: '/admin/models/9999', headers: auth });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().message).toBe('version 9999 does not exist');

      const bad = await app.inject({ method: 'GET', url: '/admin/models/abc', headers: auth });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().errors[0].field).toBe('id');

      // Past Postgres's int range: a 400, not a failed query.
      const huge = await app.inject({ method: 'GET', url: '/admin/models/2147483648', headers: auth });
      expect(huge.statusCode).toBe(400);
      expect(huge.json().errors[0].field).toBe('id');
      const offset = await app.inject({ method: 'GET', url: '/admin/rollouts?offset=1e20', headers: auth });
      expect(offset.statusCode).toBe(400);
    });

    it('compares the metrics of two versions per task, with deltas', async () => {
      const response = await app.inject({
        method: 'GET',
        url: `/admin/models/compare?a=${first}&b=${second}`,
        headers: auth,
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.a.id).toBe(first);
      expect(body.b.id).toBe(second);
      expect(body.tasks.map((t: { task: string }) => t.task)).toEqual(['click', 'like', 'watch_time']);
      const auc = body.tasks[0].metrics.find((m: { metric: string }) => m.metric === 'auc');
      expect(auc.delta).toBeCloseTo(auc.b - auc.a, 12);

      expect(
        (await app.inject({ method: 'GET', url: `/admin/models/compare?a=${first}&b=9999`, headers: auth })).statusCode,
      ).toBe(404);
      const bad = await app.inject({ method: 'GET', url: `/admin/models/compare?a=${first}`, headers: auth });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().errors[0].field).toBe('b');
    });

    it('400s a corrupt artifact with the artifact error', async () => {
      const { artifact } = await tinyArtifact(1);
      const corrupt = Buffer.from(artifact);
      corrupt[corrupt.length - 1] ^= 0xff;
      const response = await app.inject({
        method: 'POST',
        url: '/admin/models',
        headers: auth,
        payload: { artifact: corrupt.toString('base64') },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toEqual([
        { field: 'artifact', message: expect.stringMatching(/^artifact is corrupted: sha256 is [0-9a-f]+, expected/) },
      ]);

      const notOne = await app.inject({
        method: 'POST',
        url: '/admin/models',
        headers: auth,
        payload: { artifact: Buffer.from('hello world').toString('base64') },
      });
      expect(notOne.statusCode).toBe(400);
      expect(notOne.json().errors[0].message).toMatch(/not an MMoE model artifact/);
    });

    it('400s malformed bodies naming the field', async () => {
      const { artifact } = await tinyArtifact(1);
      const cases: [Record<string, unknown>, string][] = [
        [{}, 'artifact'],
        [{ artifact: 'not base64!' }, 'artifact'],
        [{ artifact: artifact.toString('base64'), objectiveWeights: { click: 'high' } }, 'objectiveWeights.click'],
        [{ artifact: artifact.toString('base64'), objectiveWeights: { share: 1 } }, 'objectiveWeights.share'],
        [{ artifact: artifact.toString('base64'), parentVersionId: 9999 }, 'parentVersionId'],
        [{ artifact: artifact.toString('base64'), status: 'production' }, 'status'],
      ];
      for (const [payload, field] of cases) {
        const response = await app.inject({ method: 'POST', url: '/admin/models', headers: auth, payload });
        expect(response.statusCode).toBe(400);
        expect(response.json().errors.map((e: { field: string }) => e.field)).toContain(field);
      }
      const percent = await app.inject({
        method: 'POST',
        url: `/admin/models/${first}/canary`,
        headers: auth,
        payload: { percent: 101 },
      });
      expect(percent.statusCode).toBe(400);
      expect(percent.json().errors[0].field).toBe('percent');
      const versions = await app.inject({ method: 'GET', url: '/admin/models', headers: auth });
      expect(versions.json()).toHaveLength(2);
    });

    it('takes artifacts larger than the global body limit on the register route only', async () => {
      const big = { artifact: Buffer.alloc(2 * 1024 * 1024, 1).toString('base64') };
      const register = await app.inject({ method: 'POST', url: '/admin/models', headers: auth, payload: big });
      expect(register.statusCode).toBe(400); // parsed and rejected as an artifact, not refused as too large
      expect(register.json().errors[0].field).toBe('artifact');
      const canary = await app.inject({
        method: 'POST',
        url: `/admin/models/${first}/canary`,
        headers: auth,
        payload: { percent: 1, ...big },
      });
      expect(canary.statusCode).toBe(413);
    });
  });
});
