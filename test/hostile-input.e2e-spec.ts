import { getQueueToken } from '@nestjs/bull';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Queue } from 'bull';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { decodeArtifact, encodeArtifact, type ArtifactHeader } from '@app/mmoe';
import { TRAINING_QUEUE } from '@app/queue';
import { REDIS } from '@app/redis';

import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import { createApiApp } from './api-app.factory';
import { seedModelVersion, tinyArtifact, tinyItem, tinyUser } from './fixtures/model.fixture';

const TOKEN = 'hostile-input-test-token';

interface Attack {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  /** A JSON body, or a raw string sent as it is. */
  body?: unknown;
  contentType?: string;
  status: number;
  /** The field a 400 must name (in `errors[].field`, or in the message of a body-level error). */
  field?: string;
}

/** JSON text of objects nested `levels` deep (JSON.stringify itself would overflow the stack on it). */
const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
const deepArray = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const LONE = '\ud800';
/** A NUL and a lone surrogate as they arrive percent-encoded in a path or query (a lone one is not even UTF-8). */
const NUL_URL = '%00';
const LONE_URL = '%ED%A0%80';
/** The 900 KB junk value a probe got stored in the audit trail (under the 1 MiB body limit). */
const JUNK = 'x'.repeat(900_000);
/** Integers as a lenient Number() would read them, one of each kind: every one must be a 400. */
const LOOSE_INTEGERS = ['0x1', '1e0', '%201', '1.0', '%2B1', '0b1'];
const policy = (patch: object) => ({ confidence: 0.95, minEvents: 100, tasks: { click: {} }, ...patch });
const job = (patch: object) => ({ source: { kind: 'csv', path: '/data/x.csv' }, ...patch });

/**
 * Bull Board's routes (its plugin registers them; the coverage test fails when an upgrade adds one). Each is sent with
 * a NUL in its parameters: refused before the board acts, so that none of them (pause, empty, obliterate …) runs.
 */
const BOARD_ROUTES: [Attack['method'], string][] = [
  ['GET', ''],
  ['GET', '/metrics-history'],
  ['GET', '/job-schedulers'],
  ['GET', '/queue/:queueName'],
  ['GET', '/queue/:queueName/:jobId'],
  ['GET', '/api/redis/stats'],
  ['GET', '/api/queues'],
  ['GET', '/api/job-schedulers'],
  ['GET', '/api/queues/:queueName/metrics'],
  ['GET', '/api/queues/:queueName/default-job-options'],
  ['GET', '/api/queues/:queueName/workers'],
  ['GET', '/api/queues/:queueName/rate-limit'],
  ['GET', '/api/queues/:queueName/job-data-schema'],
  ['PUT', '/api/queues/pause'],
  ['PUT', '/api/queues/resume'],
  ['GET', '/api/queues/:queueName/:jobId/logs'],
  ['GET', '/api/queues/:queueName/:jobId/flow'],
  ['GET', '/api/queues/:queueName/:jobId'],
  ['POST', '/api/queues/:queueName/add'],
  ['PUT', '/api/queues/:queueName/retry/:queueStatus'],
  ['PUT', '/api/queues/:queueName/promote'],
  ['PUT', '/api/queues/:queueName/clean/:queueStatus'],
  ['PUT', '/api/queues/:queueName/pause'],
  ['PUT', '/api/queues/:queueName/resume'],
  ['PUT', '/api/queues/:queueName/concurrency'],
  ['PUT', '/api/queues/:queueName/rate-limit'],
  ['PUT', '/api/queues/:queueName/rate-limit/release'],
  ['PUT', '/api/queues/:queueName/empty'],
  ['PUT', '/api/queues/:queueName/obliterate'],
  ['PUT', '/api/queues/:queueName/job-schedulers/:schedulerId/remove'],
  ['PATCH', '/api/queues/:queueName/job-schedulers/:schedulerId'],
  ['PUT', '/api/queues/:queueName/job-schedulers/:schedulerId/run'],
  ['PUT', '/api/queues/:queueName/:jobId/retry'],
  ['PUT', '/api/queues/:queueName/:jobId/clean'],
  ['PUT', '/api/queues/:queueName/:jobId/promote'],
  ['PATCH', '/api/queues/:queueName/:jobId/update-data'],
  ['PATCH', '/api/queues/:queueName/:jobId/delay'],
  ['PATCH', '/api/queues/:queueName/:jobId/priority'],
  ['PUT', '/api/queues/:queueName/:jobId/remove-unprocessed-children'],
  ['GET', '/static/*'],
];
/** A board URL with NUL in its first parameter (the real queue name in the others), or in its query when it has none. */
function boardUrl(path: string): string {
  const params = path.match(/:\w+|\*/g) ?? [];
  if (params.length === 0) return `/admin/queues${path}?activeQueue=${NUL_URL}`;
  let first = true;
  const filled = path.replace(/:\w+|\*/g, (param) => {
    const value = first ? `t${NUL_URL}` : param === ':queueName' ? 'training' : '1';
    first = false;
    return value;
  });
  return `/admin/queues${filled}`;
}
const score = (patch: object) => ({ userId: 'u1', itemIds: ['i0', 'i1'], ...patch });
const event = (patch: object) => ({
  events: [{ eventId: 'e1', userId: 'u1', itemId: 'i1', labels: { click: 1 }, ...patch }],
});
const entity = (id: unknown, features: unknown = { item_price: 1 }) => ({ id, features });
const raw = (text: string): Pick<Attack, 'body' | 'contentType'> => ({ body: text, contentType: 'application/json' });

/**
 * The tiny model's artifact with its header changed by `patch` (or its weight list replaced), under a valid
 * checksum: only the checks of what the header declares can refuse it.
 */
async function craftedArtifact(
  patch: (header: ArtifactHeader) => void,
  weights?: Map<string, { shape: unknown; values: Float32Array }>,
): Promise<string> {
  const decoded = decodeArtifact((await tinyArtifact()).artifact);
  patch(decoded.header);
  const shapes = new Map(decoded.header.weights.map((w) => [w.name, w.shape]));
  const real = new Map([...decoded.weights].map(([name, values]) => [name, { shape: shapes.get(name)!, values }]));
  return encodeArtifact(
    decoded.header,
    (weights ?? real) as Map<string, { shape: number[]; values: Float32Array }>,
  ).toString('base64');
}
const TWO_MILLION_BUCKETS = (header: ArtifactHeader) =>
  (header.preprocessing.categorical[1] = {
    name: header.preprocessing.categorical[1].name,
    embeddingDim: 64,
    hashBuckets: 2_000_000,
  });

/** An upload of a crafted artifact: a 400 naming `artifact`. */
const artifactAttack = (name: string, craft: () => Promise<string>): [string, () => Promise<Attack>] => [
  name,
  async () => ({
    method: 'POST',
    url: '/admin/models',
    body: { artifact: await craft() },
    status: 400,
    field: 'artifact',
  }),
];

describe('hostile input (e2e)', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  const tally = { requests: 0, client: 0, server: 0 };
  /** Every route the app registers (HEAD ones are GET's), and the statuses of the corpus's requests that reached each. */
  const routes = new Map<string, number[]>();
  const routeOf = (method: string, url: string) => `${method} ${url}`;
  let trainingQueue: Queue;
  let jobsBefore: string[];
  /** Every training job but the schedule's next run (re-seeded on its own): an accepted attack would add one. */
  const jobIds = async () =>
    (await trainingQueue.getJobs(['waiting', 'active', 'paused', 'delayed', 'completed', 'failed']))
      .map((j) => String(j.id))
      .filter((id) => !id.startsWith('repeat:'))
      .sort();

  const send = async ({ method, url, body, contentType }: Omit<Attack, 'status' | 'field'>) => {
    const response = await app.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(contentType
          ? { 'content-type': contentType }
          : body !== undefined && { 'content-type': 'application/json' }),
      },
      payload: typeof body === 'string' || body === undefined ? body : JSON.stringify(body),
    });
    tally.requests++;
    if (response.statusCode >= 400 && response.statusCode < 500) tally.client++;
    if (response.statusCode >= 500) tally.server++;
    return response;
  };
  const counts = async () =>
    (
      await db.query(`SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM user_features)::int AS users,
        (SELECT count(*) FROM item_features)::int AS items, (SELECT count(*) FROM model_versions)::int AS versions,
        (SELECT count(*) FROM rollout_events)::int AS rollouts`)
    )[0];
  let before: Record<string, number>;
  let productionId: number;
  /** A rollout policy the route must refuse, naming `field`. */
  const refusedPolicy = (patch: object, field: string) => (): Attack => ({
    method: 'PUT',
    url: `/admin/models/${productionId}/rollout-policy`,
    body: policy(patch),
    status: 400,
    field,
  });

  beforeAll(async () => {
    app = await createApiApp({ ADMIN_TOKEN: TOKEN }, (fastify) => {
      fastify.addHook('onRoute', ({ method, url }) => {
        for (const m of [method].flat()) if (m !== 'HEAD') routes.set(routeOf(m, url), []);
      });
      fastify.addHook('onResponse', (request, reply, done) => {
        const url = request.routeOptions.url;
        if (url !== undefined) routes.get(routeOf(request.method, url))?.push(reply.statusCode);
        done();
      });
    });
    trainingQueue = app.get<Queue>(getQueueToken(TRAINING_QUEUE));
    db = app.get(DataSource);
    await db.query('TRUNCATE events, user_features, item_features, model_versions, rollout_events CASCADE');
    await app.get<Redis>(REDIS).flushdb();
    productionId = await seedModelVersion(db, 'production');
    await app.get(ModelLifecycleService).refresh();
    await app.inject({ method: 'PUT', url: '/v1/users/u1/features', payload: { features: tinyUser(1) } });
    await app.inject({
      method: 'PUT',
      url: '/v1/items/features',
      payload: { entities: [0, 1].map((i) => ({ id: `i${i}`, features: tinyItem(i) })) },
    });
    before = await counts();
    jobsBefore = await jobIds();
  });

  afterAll(async () => {
    process.stdout.write(
      `hostile-input corpus: ${tally.requests} requests over ${routes.size} routes, ${tally.client} answered 4xx, ` +
        `${tally.server} answered 5xx\n`,
    );
    await app.close();
  });

  const attacks: [string, () => Attack | Promise<Attack>][] = [
    // JSON itself
    [
      'JSON nested 5,000 levels in context',
      () => ({
        method: 'POST',
        url: '/v1/score',
        ...raw(`{"userId":"u1","itemIds":["i0"],"context":${deep(5000)}}`),
        status: 400,
        field: 'body',
      }),
    ],
    [
      'arrays nested 100,000 levels',
      () => ({ method: 'POST', url: '/v1/score', ...raw(deepArray(100_000)), status: 400, field: 'body' }),
    ],
    [
      'nesting inside feature values',
      () => ({
        method: 'PUT',
        url: '/v1/users/u9/features',
        ...raw(`{"features":${deep(40)}}`),
        status: 400,
        field: 'body',
      }),
    ],
    [
      'nesting inside a training spec',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        ...raw(`{"source":{"kind":"csv","path":"x"},"spec":${deep(4500)}}`),
        status: 400,
        field: 'body',
      }),
    ],
    [
      'invalid JSON',
      () => ({ method: 'POST', url: '/v1/score', ...raw('{"userId": "u1",'), status: 400, field: 'body' }),
    ],
    // lists of objects holding a list (class-validator's ValidateNested steps into it: 500s further on)
    [
      'a bulk entity that is a list',
      () => ({ method: 'PUT', url: '/v1/items/features', body: { entities: [[]] }, status: 400, field: 'entities.0' }),
    ],
    [
      'a list after a good bulk entity',
      () => ({
        method: 'PUT',
        url: '/v1/users/features',
        body: { entities: [{ id: 'u-ok', features: {} }, [{ id: 'x', features: {} }]] },
        status: 400,
        field: 'entities.1',
      }),
    ],
    [
      'an event that is a list',
      () => ({ method: 'POST', url: '/v1/events', body: { events: [[]] }, status: 400, field: 'events.0' }),
    ],
    [
      'a training source that is a list of null',
      () => ({ method: 'POST', url: '/admin/training-jobs', body: { source: [null] }, status: 400, field: 'source' }),
    ],
    [
      'NaN literal',
      () => ({
        method: 'POST',
        url: '/v1/score',
        ...raw('{"userId":"u1","itemIds":["i0"],"objectiveWeights":{"click":NaN}}'),
        status: 400,
      }),
    ],
    [
      'Infinity literal',
      () => ({
        method: 'POST',
        url: '/v1/events',
        ...raw('{"events":[{"eventId":"e","userId":"u","itemId":"i","labels":{"watch_time":Infinity}}]}'),
        status: 400,
      }),
    ],
    [
      '1e999 (parses to Infinity) as a weight',
      () => ({
        method: 'POST',
        url: '/v1/score',
        ...raw('{"userId":"u1","itemIds":["i0"],"objectiveWeights":{"click":1e999}}'),
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    [
      'a __proto__ key',
      () => ({
        method: 'POST',
        url: '/v1/score',
        ...raw('{"userId":"u1","itemIds":["i0"],"__proto__":{"x":1}}'),
        status: 400,
        field: '__proto__', // named, not called invalid JSON
      }),
    ],
    [
      'a constructor.prototype key',
      () => ({
        method: 'POST',
        url: '/v1/score',
        ...raw('{"userId":"u1","itemIds":["i0"],"context":{"constructor":{"prototype":{"x":1}}}}'),
        status: 400,
        field: 'constructor.prototype',
      }),
    ],
    ['a JSON array as the body', () => ({ method: 'POST', url: '/v1/score', body: [1, 2], status: 400 })],
    [
      'a JSON string as the body',
      () => ({ method: 'POST', url: '/v1/score', body: '"hello"', contentType: 'application/json', status: 400 }),
    ],
    ['JSON null as the body', () => ({ method: 'POST', url: '/v1/score', ...raw('null'), status: 400, field: 'body' })],
    [
      'text/plain on /v1/score',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: JSON.stringify(score({})),
        contentType: 'text/plain',
        status: 415,
      }),
    ],
    [
      'a form on /v1/events',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: 'events=1',
        contentType: 'application/x-www-form-urlencoded',
        status: 415,
      }),
    ],
    [
      'XML on a feature PUT',
      () => ({
        method: 'PUT',
        url: '/v1/items/features',
        body: '<entities/>',
        contentType: 'application/xml',
        status: 415,
      }),
    ],
    [
      'text/plain on the admin API',
      () => ({ method: 'POST', url: '/admin/models/promote', body: '{}', contentType: 'text/plain', status: 415 }),
    ],
    // scoring
    [
      'a lone surrogate in userId',
      () => ({ method: 'POST', url: '/v1/score', body: score({ userId: `u${LONE}` }), status: 400, field: 'userId' }),
    ],
    [
      'a lone low surrogate in an item id',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ itemIds: ['i0', 'i\udc00'] }),
        status: 400,
        field: 'itemIds',
      }),
    ],
    [
      'NUL in userId',
      () => ({ method: 'POST', url: '/v1/score', body: score({ userId: 'u\0' }), status: 400, field: 'userId' }),
    ],
    [
      'NUL in an item id',
      () => ({ method: 'POST', url: '/v1/score', body: score({ itemIds: ['i\0'] }), status: 400, field: 'itemIds' }),
    ],
    [
      'a lone surrogate in a context key',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ context: { [`d${LONE}`]: 1 } }),
        status: 400,
        field: 'context',
      }),
    ],
    [
      'a weight of 1e308',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ objectiveWeights: { watch_time: 1e308 } }),
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    [
      'a weight of -1e7',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ objectiveWeights: { click: -1e7 } }),
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    [
      'a weight as a string',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ objectiveWeights: { click: '1' } }),
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    [
      'a weight for no task',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ objectiveWeights: { share: 1 } }),
        status: 400,
        field: 'objectiveWeights.share',
      }),
    ],
    [
      'userId as a number',
      () => ({ method: 'POST', url: '/v1/score', body: score({ userId: 42 }), status: 400, field: 'userId' }),
    ],
    [
      'itemIds missing',
      () => ({ method: 'POST', url: '/v1/score', body: { userId: 'u1' }, status: 400, field: 'itemIds' }),
    ],
    [
      'itemIds empty',
      () => ({ method: 'POST', url: '/v1/score', body: score({ itemIds: [] }), status: 400, field: 'itemIds' }),
    ],
    [
      '1,001 candidates',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ itemIds: Array.from({ length: 1001 }, (_, i) => `i${i}`) }),
        status: 400,
        field: 'itemIds',
      }),
    ],
    [
      'duplicate candidates',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ itemIds: ['i0', 'i0'] }),
        status: 400,
        field: 'itemIds',
      }),
    ],
    [
      'a 257-character item id',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ itemIds: ['x'.repeat(257)] }),
        status: 400,
        field: 'itemIds',
      }),
    ],
    [
      'an extra field',
      () => ({ method: 'POST', url: '/v1/score', body: score({ admin: true }), status: 400, field: 'admin' }),
    ],
    [
      'explain as a string',
      () => ({ method: 'POST', url: '/v1/score', body: score({ explain: 'yes' }), status: 400, field: 'explain' }),
    ],
    [
      'a nested context value',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ context: { device: { os: 'x' } } }),
        status: 400,
        field: 'context',
      }),
    ],
    // features
    [
      'a lone surrogate in a feature name',
      () => ({
        method: 'PUT',
        url: '/v1/users/u9/features',
        body: { features: { [`age${LONE}`]: 1 } },
        status: 400,
        field: 'features',
      }),
    ],
    [
      'a lone surrogate in a feature value',
      () => ({
        method: 'PUT',
        url: '/v1/items/i9/features',
        body: { features: { item_genre: `g${LONE}` } },
        status: 400,
        field: 'features',
      }),
    ],
    [
      'NUL in a feature value',
      () => ({
        method: 'PUT',
        url: '/v1/items/i9/features',
        body: { features: { item_genre: 'g\0' } },
        status: 400,
        field: 'features',
      }),
    ],
    [
      'a lone surrogate in an entity id (path)',
      () => ({
        method: 'PUT',
        url: `/v1/users/${encodeURIComponent('u')}%ED%A0%80/features`,
        body: { features: {} },
        status: 400,
      }),
    ],
    [
      'a lone surrogate in a bulk entity id',
      () => ({
        method: 'PUT',
        url: '/v1/items/features',
        body: { entities: [entity('ok'), entity(`i${LONE}`)] },
        status: 400,
        field: 'entities.1.id',
      }),
    ],
    [
      'duplicate bulk ids',
      () => ({
        method: 'PUT',
        url: '/v1/items/features',
        body: { entities: [entity('d'), entity('d')] },
        status: 400,
        field: 'entities.1.id',
      }),
    ],
    [
      '10,001 bulk entities',
      () => ({
        method: 'PUT',
        url: '/v1/items/features',
        body: { entities: Array.from({ length: 10_001 }, (_, i) => entity(`b${i}`)) },
        status: 400,
        field: 'entities',
      }),
    ],
    [
      'entities as an object',
      () => ({
        method: 'PUT',
        url: '/v1/items/features',
        body: { entities: { id: 'x' } },
        status: 400,
        field: 'entities',
      }),
    ],
    [
      'features as an array',
      () => ({ method: 'PUT', url: '/v1/users/u9/features', body: { features: [1] }, status: 400, field: 'features' }),
    ],
    [
      '257 features',
      () => ({
        method: 'PUT',
        url: '/v1/users/u9/features',
        body: { features: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, i])) },
        status: 400,
        field: 'features',
      }),
    ],
    [
      'a 257-character id in the path',
      () => ({
        method: 'PUT',
        url: `/v1/users/${'x'.repeat(257)}/features`,
        body: { features: {} },
        status: 400,
        field: 'id',
      }),
    ],
    [
      'NUL in the path id',
      () => ({ method: 'PUT', url: '/v1/users/u%00/features', body: { features: {} }, status: 400, field: 'id' }),
    ],
    [
      'a 2 MB string (over the body limit)',
      () => ({
        method: 'PUT',
        url: '/v1/users/u9/features',
        body: { features: { bio: 'x'.repeat(2_000_000) } },
        status: 413,
      }),
    ],
    // events
    [
      'a lone surrogate in eventId',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ eventId: `e${LONE}` }),
        status: 400,
        field: 'events.0.eventId',
      }),
    ],
    [
      'a lone surrogate in an event userId',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ userId: LONE }),
        status: 400,
        field: 'events.0.userId',
      }),
    ],
    [
      'a lone surrogate in an event itemId',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ itemId: `${LONE}x` }),
        status: 400,
        field: 'events.0.itemId',
      }),
    ],
    [
      'a lone surrogate in event context',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ context: { device: LONE } }),
        status: 400,
        field: 'events.0.context',
      }),
    ],
    [
      'a lone surrogate in a label name',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ labels: { [LONE]: 1 } }),
        status: 400,
        field: 'events.0.labels',
      }),
    ],
    [
      'NUL in requestId',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ requestId: 'r\0' }),
        status: 400,
        field: 'events.0.requestId',
      }),
    ],
    [
      'a binary label of 2',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ labels: { click: 2 } }),
        status: 400,
        field: 'events.0.labels.click',
      }),
    ],
    [
      'a label as a string',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ labels: { click: '1' } }),
        status: 400,
        field: 'events.0.labels',
      }),
    ],
    [
      'an unreadable occurredAt',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ occurredAt: '2025-W01' }),
        status: 400,
        field: 'events.0.occurredAt',
      }),
    ],
    [
      'an occurredAt without its zone (read in the server local time)',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ occurredAt: '2025-01-01T10:00:00' }),
        status: 400,
        field: 'events.0.occurredAt',
      }),
    ],
    [
      'an occurredAt with a space and without its zone',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ occurredAt: '2025-01-01 10:00:00' }),
        status: 400,
        field: 'events.0.occurredAt',
      }),
    ],
    [
      'a modelVersion past int4',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ modelVersion: 2 ** 31 }),
        status: 400,
        field: 'events.0.modelVersion',
      }),
    ],
    ['no events', () => ({ method: 'POST', url: '/v1/events', body: { events: [] }, status: 400, field: 'events' })],
    // admin: ids and queries
    ['a hexadecimal version id', () => ({ method: 'GET', url: '/admin/models/0x2', status: 400, field: 'id' })],
    ['an exponent version id', () => ({ method: 'GET', url: '/admin/models/1e0', status: 400, field: 'id' })],
    ['a version id with a space', () => ({ method: 'GET', url: '/admin/models/%201', status: 400, field: 'id' })],
    ['a negative version id', () => ({ method: 'GET', url: '/admin/models/-1', status: 400, field: 'id' })],
    ['a version id past int4', () => ({ method: 'GET', url: '/admin/models/2147483648', status: 400, field: 'id' })],
    [
      'a path-traversal version id',
      () => ({ method: 'GET', url: '/admin/models/..%2F..%2Fetc%2Fpasswd', status: 400, field: 'id' }),
    ],
    [
      'a hexadecimal compare id',
      () => ({ method: 'GET', url: '/admin/models/compare?a=0x1&b=1', status: 400, field: 'a' }),
    ],
    [
      'a hexadecimal page size',
      () => ({ method: 'GET', url: '/admin/rollouts?limit=0x10', status: 400, field: 'limit' }),
    ],
    ['a fractional offset', () => ({ method: 'GET', url: '/admin/rollouts?offset=1.5', status: 400, field: 'offset' })],
    [
      'an exponent job-list limit',
      () => ({ method: 'GET', url: '/admin/training-jobs?limit=1e1', status: 400, field: 'limit' }),
    ],
    // admin: bodies
    [
      'NUL in a version note',
      async () => ({
        method: 'POST',
        url: '/admin/models',
        body: { artifact: (await tinyArtifact()).artifact.toString('base64'), note: 'a\0b' },
        status: 400,
        field: 'note',
      }),
    ],
    [
      'a lone surrogate in a version note',
      async () => ({
        method: 'POST',
        url: '/admin/models',
        body: { artifact: (await tinyArtifact()).artifact.toString('base64'), note: LONE },
        status: 400,
        field: 'note',
      }),
    ],
    [
      'a registered weight of 1e308',
      async () => ({
        method: 'POST',
        url: '/admin/models',
        body: { artifact: (await tinyArtifact()).artifact.toString('base64'), objectiveWeights: { click: 1e308 } },
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    [
      'an artifact that is not base64',
      () => ({ method: 'POST', url: '/admin/models', body: { artifact: '***' }, status: 400, field: 'artifact' }),
    ],
    [
      'an artifact of random bytes',
      () => ({
        method: 'POST',
        url: '/admin/models',
        body: { artifact: Buffer.alloc(64, 7).toString('base64') },
        status: 400,
        field: 'artifact',
      }),
    ],
    artifactAttack('an artifact declaring 2,000,000 hash buckets × 64', () => craftedArtifact(TWO_MILLION_BUCKETS)),
    artifactAttack('an artifact whose weight shape is a string', () =>
      craftedArtifact(() => undefined, new Map([['w', { shape: 'abc', values: new Float32Array(4) }]])),
    ),
    artifactAttack('an artifact with a missing weight', () =>
      craftedArtifact(
        () => undefined,
        new Map([['embedding/item_genre', { shape: [7, 3], values: new Float32Array(21) }]]),
      ),
    ),
    [
      'a parent version past int4',
      async () => ({
        method: 'POST',
        url: '/admin/models',
        body: { artifact: 'AAAA', parentVersionId: 2 ** 40 },
        status: 400,
        field: 'parentVersionId',
      }),
    ],
    [
      'a canary percent of 101',
      () => ({
        method: 'POST',
        url: `/admin/models/${productionId}/canary`,
        body: { percent: 101 },
        status: 400,
        field: 'percent',
      }),
    ],
    [
      'a canary weight of -1e9',
      () => ({
        method: 'POST',
        url: `/admin/models/${productionId}/canary`,
        body: { percent: 5, objectiveWeights: { click: -1e9 } },
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    [
      'a promote with a string versionId',
      () => ({
        method: 'POST',
        url: '/admin/models/promote',
        body: { versionId: '1' },
        status: 400,
        field: 'versionId',
      }),
    ],
    [
      'a training job of an unknown source kind',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: { source: { kind: 'ftp' } },
        status: 400,
        field: 'source.kind',
      }),
    ],
    [
      'a training window ending before it starts',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: { source: { kind: 'events', from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' } },
        status: 400,
        field: 'source.to',
      }),
    ],
    [
      'a schedule cron of the wrong type',
      () => ({ method: 'PUT', url: '/admin/training-schedule', body: { cron: 5 }, status: 400, field: 'cron' }),
    ],
    // admin: the live-traffic routes
    ...LOOSE_INTEGERS.map((a): [string, () => Attack] => [
      `compare-live with a=${a}`,
      () => ({ method: 'GET', url: `/admin/models/compare-live?a=${a}&b=${productionId}`, status: 400, field: 'a' }),
    ]),
    [
      'compare-live with b=true',
      () => ({ method: 'GET', url: `/admin/models/compare-live?a=${productionId}&b=true`, status: 400, field: 'b' }),
    ],
    [
      'compare-live with a repeated',
      () => ({ method: 'GET', url: `/admin/models/compare-live?a=1&a=2&b=1`, status: 400, field: 'a' }),
    ],
    [
      'compare-live with an unknown parameter',
      () => ({ method: 'GET', url: `/admin/models/compare-live?a=1&b=1&junk=1`, status: 400, field: 'junk' }),
    ],
    [
      'live-metrics of a hexadecimal version',
      () => ({ method: 'GET', url: '/admin/models/0x1/live-metrics', status: 400, field: 'id' }),
    ],
    [
      'live-metrics over a window with NUL',
      () => ({ method: 'GET', url: `/admin/models/1/live-metrics?window=1h${NUL_URL}`, status: 400, field: 'window' }),
    ],
    [
      'live-metrics over a window of a year',
      () => ({ method: 'GET', url: '/admin/models/1/live-metrics?window=1y', status: 400, field: 'window' }),
    ],
    [
      'live-metrics over more than 31 days (was cut to 31 silently)',
      () => ({ method: 'GET', url: '/admin/models/1/live-metrics?window=32d', status: 400, field: 'window' }),
    ],
    [
      'a shadow percent as a string',
      () => ({ method: 'POST', url: '/admin/models/1/shadow', body: { percent: '10' }, status: 400, field: 'percent' }),
    ],
    [
      'a shadow percent of true',
      () => ({ method: 'POST', url: '/admin/models/1/shadow', body: { percent: true }, status: 400, field: 'percent' }),
    ],
    [
      'a shadow with a 900 KB junk field',
      () => ({
        method: 'POST',
        url: '/admin/models/1/shadow',
        body: { percent: 10, junk: JUNK },
        status: 400,
        field: 'junk',
      }),
    ],
    [
      'a shadow of version +1',
      () => ({ method: 'POST', url: '/admin/models/%2B1/shadow', body: { percent: 10 }, status: 400, field: 'id' }),
    ],
    [
      'stopping the shadow of version +1',
      () => ({ method: 'DELETE', url: '/admin/models/%2B1/shadow', status: 400, field: 'id' }),
    ],
    [
      'stopping the shadow with a body',
      () => ({ method: 'DELETE', url: '/admin/models/1/shadow', body: { percent: 0 }, status: 400, field: 'body' }),
    ],
    [
      'a null shadow body',
      () => ({ method: 'POST', url: '/admin/models/1/shadow', ...raw('null'), status: 400, field: 'body' }),
    ],
    // admin: the rollout policy (the probe's 500s, and what it got stored)
    [
      'NUL in an unknown key under tasks.click',
      () => ({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        body: { tasks: { click: { minEvents: 5, junk: 'a\0b' } } },
        status: 400,
        field: 'tasks.click.junk',
      }),
    ],
    [
      'a lone surrogate under tasks.click',
      () => ({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        body: { tasks: { click: { minEvents: 5, junk: `a${LONE}b` } } },
        status: 400,
        field: 'tasks.click.junk',
      }),
    ],
    [
      'NUL in a task name',
      () => ({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        body: { tasks: { 'cl\0ick': { minEvents: 5 } } },
        status: 400,
        field: 'tasks',
      }),
    ],
    [
      'a lone surrogate in a policy key',
      () => ({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        body: { [`conf${LONE}`]: 0.9 },
        status: 400,
        field: 'body',
      }),
    ],
    [
      'a 900 KB junk value under tasks.click',
      () => ({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        body: { tasks: { click: { junk: JUNK } } },
        status: 400,
        field: 'tasks.click.junk',
      }),
    ],
    ['a 900 KB junk field in a policy', refusedPolicy({ note: JUNK }, 'note')],
    ['minEvents "0x10"', refusedPolicy({ minEvents: '0x10' }, 'minEvents')],
    ['minEvents true', refusedPolicy({ minEvents: true }, 'minEvents')],
    ['a task minEvents as a string', refusedPolicy({ tasks: { click: { minEvents: '5' } } }, 'tasks.click.minEvents')],
    ['a confidence as a string', refusedPolicy({ confidence: '0.9' }, 'confidence')],
    ['tasks as an array', refusedPolicy({ tasks: [{}] }, 'tasks')],
    [
      "a task's policy as an array (stored, it failed every scheduled run)",
      refusedPolicy({ tasks: { click: [] } }, 'tasks.click'),
    ],
    ["a task's policy as a list of one", refusedPolicy({ tasks: { click: [{}] } }, 'tasks.click')],
    ["a task's policy as null", refusedPolicy({ tasks: { click: null } }, 'tasks.click')],
    [
      'a policy with maxEvents null (stored, it ended every test at once)',
      refusedPolicy({ maxEvents: null }, 'maxEvents'),
    ],
    ['a policy gating on no task (stored, it promoted without a test)', refusedPolicy({ tasks: {} }, 'tasks')],
    [
      'a null policy',
      () => ({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        ...raw('null'),
        status: 400,
        field: 'body',
      }),
    ],
    [
      'a policy for version 1.0',
      () => ({ method: 'PUT', url: '/admin/models/1.0/rollout-policy', body: policy({}), status: 400, field: 'id' }),
    ],
    [
      'clearing the policy of version 0b1',
      () => ({ method: 'DELETE', url: '/admin/models/0b1/rollout-policy', status: 400, field: 'id' }),
    ],
    [
      'clearing the policy of a version past int4',
      () => ({ method: 'DELETE', url: '/admin/models/2147483648/rollout-policy', status: 400, field: 'id' }),
    ],
    // admin: the other version routes added since
    [
      'a precision of int4',
      () => ({
        method: 'POST',
        url: '/admin/models/1/precision',
        body: { precision: 'int4' },
        status: 400,
        field: 'precision',
      }),
    ],
    [
      'NUL in a precision',
      () => ({
        method: 'POST',
        url: '/admin/models/1/precision',
        body: { precision: 'int8\0' },
        status: 400,
        field: 'precision',
      }),
    ],
    [
      'a null precision body',
      () => ({ method: 'POST', url: '/admin/models/1/precision', ...raw('null'), status: 400, field: 'body' }),
    ],
    ['the report of version 1e0', () => ({ method: 'GET', url: '/admin/models/1e0/report', status: 400, field: 'id' })],
    [
      'the report of a version that was uploaded, not trained',
      () => ({ method: 'GET', url: `/admin/models/${productionId}/report`, status: 404 }),
    ],
    [
      'a canary fusion rule with NUL in a task name',
      () => ({
        method: 'POST',
        url: '/admin/models/1/canary',
        body: { percent: 5, fusion: { type: 'sum', weights: { 'cl\0ick': 1 } } },
        status: 400,
        field: 'fusion.weights',
      }),
    ],
    [
      'a score fusion rule with a 900 KB junk field',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ fusion: { type: 'sum', weights: { click: 1 }, junk: JUNK } }),
        status: 400,
        field: 'fusion.junk',
      }),
    ],
    ['archive version 0x1', () => ({ method: 'POST', url: '/admin/models/0x1/archive', status: 400, field: 'id' })],
    [
      'the model list with a hostile query (no query to read: ignored)',
      () => ({ method: 'GET', url: `/admin/models?limit=0x1&x=${NUL_URL}`, status: 200 }),
    ],
    [
      'rollback with a UTF-16 body',
      () => ({
        method: 'POST',
        url: '/admin/models/rollback',
        body: '{}',
        contentType: 'application/json; charset=utf-16',
        status: 415,
      }),
    ],
    // training jobs and schedule
    [
      'NUL in a CSV path',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ source: { kind: 'csv', path: '/data/x\0.csv' } }),
        status: 400,
        field: 'source.path',
      }),
    ],
    [
      'a lone surrogate in a spec key',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ spec: { features: [], [`tasks${LONE}`]: [] } }),
        status: 400,
        field: 'spec',
      }),
    ],
    [
      'a 900 KB junk field in a training spec',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ spec: { features: [], tasks: [], junk: JUNK } }),
        status: 400,
        field: 'spec',
      }),
    ],
    [
      'epochs as a string',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ overrides: { epochs: '5' } }),
        status: 400,
        field: 'overrides.epochs',
      }),
    ],
    [
      'a seed beyond the safe integers',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ overrides: { seed: 2 ** 60 } }),
        status: 400,
        field: 'overrides.seed',
      }),
    ],
    [
      'an unknown override',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ overrides: { epochs: 5, junk: 1 } }),
        status: 400,
        field: 'overrides.junk',
      }),
    ],
    [
      'an unknown source field',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ source: { kind: 'csv', path: '/x', junk: JUNK } }),
        status: 400,
        field: 'source.junk',
      }),
    ],
    [
      'a null training job',
      () => ({ method: 'POST', url: '/admin/training-jobs', ...raw('null'), status: 400, field: 'body' }),
    ],
    ...['%201', '%2B1', '0b1', 'true'].map((limit): [string, () => Attack] => [
      `a job-list limit of ${limit}`,
      () => ({ method: 'GET', url: `/admin/training-jobs?limit=${limit}`, status: 400, field: 'limit' }),
    ]),
    [
      'NUL in a training job id',
      () => ({ method: 'GET', url: `/admin/training-jobs/j${NUL_URL}`, status: 400, field: 'id' }),
    ],
    [
      'a 201-character training job id',
      () => ({ method: 'GET', url: `/admin/training-jobs/${'j'.repeat(201)}`, status: 400, field: 'id' }),
    ],
    [
      'a lone surrogate in a cancelled job id',
      () => ({ method: 'POST', url: `/admin/training-jobs/j${LONE_URL}/cancel`, status: 400, field: 'path' }),
    ],
    [
      'cancelling a job that does not exist',
      () => ({ method: 'POST', url: '/admin/training-jobs/no-such-job/cancel', status: 404 }),
    ],
    [
      'NUL in a cron',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule',
        body: { cron: '0 3 * * *\0' },
        status: 400,
        field: 'cron',
      }),
    ],
    [
      'windowDays as a string',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule',
        body: { cron: '0 3 * * *', windowDays: '7' },
        status: 400,
        field: 'windowDays',
      }),
    ],
    ...(
      [
        ['warmStart as a string', { warmStart: 'true' }, 'warmStart'],
        ['warmStart null', { warmStart: null }, 'warmStart'],
        ['epochs 0', { epochs: 0 }, 'epochs'],
        ['epochs 1.5', { epochs: 1.5 }, 'epochs'],
      ] as const
    ).map(([name, fields, field]): [string, () => Attack] => [
      `a schedule with ${name}`,
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule',
        body: { cron: '0 3 * * *', ...fields },
        status: 400,
        field,
      }),
    ]),
    [
      'a schedule with a 900 KB junk field',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule',
        body: { cron: '0 3 * * *', junk: JUNK },
        status: 400,
        field: 'junk',
      }),
    ],
    [
      'a null schedule',
      () => ({ method: 'PUT', url: '/admin/training-schedule', ...raw('null'), status: 400, field: 'body' }),
    ],
    [
      'the schedule with a hostile query (no query to read: ignored)',
      () => ({ method: 'GET', url: `/admin/training-schedule?x=${NUL_URL}`, status: 200 }),
    ],
    [
      'pausing the schedule with a UTF-16 body',
      () => ({
        method: 'POST',
        url: '/admin/training-schedule/pause',
        body: '{}',
        contentType: 'application/json; charset=UTF-16',
        status: 415,
      }),
    ],
    [
      'resuming the schedule with a body nested 40 levels',
      () => ({ method: 'POST', url: '/admin/training-schedule/resume', ...raw(deep(40)), status: 400, field: 'body' }),
    ],
    [
      'an incremental cadence with replay as a string',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule/incremental',
        body: { cron: '0 * * * *', replay: '0.2' },
        status: 400,
        field: 'replay',
      }),
    ],
    [
      'an incremental cadence with NUL in its cron',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule/incremental',
        body: { cron: '0 * * * *\0' },
        status: 400,
        field: 'cron',
      }),
    ],
    [
      'pausing the incremental cadence with a UTF-16 body',
      () => ({
        method: 'POST',
        url: '/admin/training-schedule/incremental/pause',
        body: '{}',
        contentType: 'application/json; charset=UTF-16',
        status: 415,
      }),
    ],
    [
      'resuming the incremental cadence with a body nested 40 levels',
      () => ({
        method: 'POST',
        url: '/admin/training-schedule/incremental/resume',
        ...raw(deep(40)),
        status: 400,
        field: 'body',
      }),
    ],
    [
      'a warm start from an object',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: { warmStart: { from: { id: 1 } }, source: { kind: 'incremental' } },
        status: 400,
        field: 'warmStart.from',
      }),
    ],
    // null for a field that may be left out: refused like any other wrong type, never stored
    [
      'a schedule with windowDays null (a NOT NULL column: once a 500)',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule',
        body: { cron: '0 3 * * *', windowDays: null },
        status: 400,
        field: 'windowDays',
      }),
    ],
    [
      'an incremental cadence with replay null (a NOT NULL column: once a 500)',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule/incremental',
        body: { cron: '0 * * * *', replay: null },
        status: 400,
        field: 'replay',
      }),
    ],
    [
      'an incremental cadence whose policy gates on no task',
      () => ({
        method: 'PUT',
        url: '/admin/training-schedule/incremental',
        body: { cron: '0 * * * *', rolloutPolicy: policy({ tasks: {} }) },
        status: 400,
        field: 'rolloutPolicy.tasks',
      }),
    ],
    [
      'an incremental training job with replay null (queued, then refused by the worker)',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: { source: { kind: 'incremental', replay: null }, warmStart: { from: 'production' } },
        status: 400,
        field: 'source.replay',
      }),
    ],
    [
      'a training job whose overrides hold null',
      () => ({
        method: 'POST',
        url: '/admin/training-jobs',
        body: job({ overrides: { epochs: null } }),
        status: 400,
        field: 'overrides.epochs',
      }),
    ],
    [
      'an event with requestId null',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ requestId: null }),
        status: 400,
        field: 'events.0.requestId',
      }),
    ],
    [
      'a canary whose objectiveWeights are null',
      () => ({
        method: 'POST',
        url: '/admin/models/1/canary',
        body: { percent: 10, objectiveWeights: null },
        status: 400,
        field: 'objectiveWeights',
      }),
    ],
    // the old routes the corpus had not reached
    [
      'a lone surrogate in a bulk user id',
      () => ({
        method: 'PUT',
        url: '/v1/users/features',
        body: { entities: [entity(`u${LONE}`, { user_age: 1 })] },
        status: 400,
        field: 'entities.0.id',
      }),
    ],
    [
      'a lone surrogate in an item id (path)',
      () => ({
        method: 'PUT',
        url: `/v1/items/i${LONE_URL}/features`,
        body: { features: {} },
        status: 400,
        field: 'path',
      }),
    ],
    [
      'a 900 KB feature value',
      () => ({
        method: 'PUT',
        url: '/v1/users/u9/features',
        body: { features: { user_country: JUNK } },
        status: 400,
        field: 'features',
      }),
    ],
    [
      'a 900 KB event context value',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ context: { device: JUNK } }),
        status: 400,
        field: 'events.0.context',
      }),
    ],
    [
      '5,000 event context keys',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: event({ context: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 1])) }),
        status: 400,
        field: 'events.0.context',
      }),
    ],
    [
      'a 900 KB score context value',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ context: { device: JUNK } }),
        status: 400,
        field: 'context',
      }),
    ],
    [
      'the probes with a hostile query (ignored)',
      () => ({ method: 'GET', url: `/health/live?x=${NUL_URL}&y=${'a'.repeat(4000)}`, status: 200 }),
    ],
    [
      'readiness with a hostile query (ignored)',
      () => ({ method: 'GET', url: `/health/ready?x=${NUL_URL}`, status: 200 }),
    ],
    ['metrics with a hostile query (ignored)', () => ({ method: 'GET', url: `/metrics?x=${NUL_URL}`, status: 200 })],
    // the OpenAPI document and UI (static)
    ...[
      '/docs',
      '/docs/',
      '/docs/index.html',
      '/docs/swagger-ui-init.js',
      '/docs/docs/swagger-ui-init.js',
      '/docs/swagger-ui.css',
      '/docs-json',
      '/docs-yaml',
    ].map((url): [string, () => Attack] => [
      `${url} with a hostile query (ignored)`,
      () => ({ method: 'GET', url: `${url}?x=${NUL_URL}`, status: 200 }),
    ]),
    // Registered by Swagger, though swagger-ui-dist ships no LICENSE file.
    ['/docs/LICENSE with a hostile query', () => ({ method: 'GET', url: `/docs/LICENSE?x=${NUL_URL}`, status: 404 })],
    ['an asset /docs does not have', () => ({ method: 'GET', url: `/docs/no-such.js?x=${NUL_URL}`, status: 404 })],
    ['a path traversal under /docs', () => ({ method: 'GET', url: '/docs/..%2F..%2Fpackage.json', status: 404 })],
    // Bull Board: the same rules, by its own preValidation hook (a NUL in a path or query parameter, a null body)
    ...BOARD_ROUTES.map(([method, path]): [string, () => Attack] => [
      `Bull Board ${method} ${path || '/'} with NUL in a parameter`,
      () => ({ method, url: boardUrl(path), status: 400 }),
    ]),
    [
      'a Bull Board job added with a null body',
      () => ({
        method: 'POST',
        url: '/admin/queues/api/queues/training/add',
        ...raw('null'),
        status: 400,
        field: 'body',
      }),
    ],
    [
      'a Bull Board job added with NUL in its data',
      () => ({
        method: 'POST',
        url: '/admin/queues/api/queues/training/add',
        body: { name: 'train', data: { source: { kind: 'csv', path: 'x\0' } } },
        status: 400,
        field: 'data.source.path',
      }),
    ],
    [
      'a Bull Board job added with a UTF-16 body',
      () => ({
        method: 'POST',
        url: '/admin/queues/api/queues/training/add',
        body: '{}',
        contentType: 'application/json; charset=utf-16',
        status: 415,
      }),
    ],
    [
      'a repeatable job added through Bull Board (it bypassed the schedule: one every 1 ms)',
      () => ({
        method: 'POST',
        url: '/admin/queues/api/queues/training/add',
        body: { name: 'x', data: {}, options: { repeat: { every: 1 } } },
        status: 400,
        field: 'options.repeat',
      }),
    ],
    [
      'a Bull Board job added with attempts of its own (a failing one re-ran every few ms)',
      () => ({
        method: 'POST',
        url: '/admin/queues/api/queues/training/add',
        body: { name: 'x', data: {}, options: { attempts: 1000, backoff: 1 } },
        status: 400,
        field: 'options.attempts',
      }),
    ],
    [
      'a Bull Board retry of every completed job (Bull fails it half-way: a 500)',
      () => ({
        method: 'PUT',
        url: '/admin/queues/api/queues/training/retry/completed',
        status: 400,
        field: 'queueStatus',
      }),
    ],
    [
      'a Bull Board clean of a state Bull does not have',
      () => ({
        method: 'PUT',
        url: '/admin/queues/api/queues/training/clean/bogus',
        status: 400,
        field: 'queueStatus',
      }),
    ],
    [
      'a path traversal under Bull Board',
      () => ({ method: 'GET', url: '/admin/queues/static/..%2F..%2Fpackage.json', status: 404 }),
    ],
    // bodyless admin POSTs with a JSON content type and an empty body: the state decides (409), not the parser
    [
      'rollback with an empty JSON body',
      () => ({ method: 'POST', url: '/admin/models/rollback', body: '', contentType: 'application/json', status: 409 }),
    ],
    [
      'promote with an empty JSON body',
      () => ({ method: 'POST', url: '/admin/models/promote', body: '', contentType: 'application/json', status: 409 }),
    ],
    [
      'archive production with an empty JSON body',
      () => ({
        method: 'POST',
        url: `/admin/models/${productionId}/archive`,
        body: '',
        contentType: 'application/json',
        status: 409,
      }),
    ],
    [
      'rollback with {}: the state decides',
      () => ({ method: 'POST', url: '/admin/models/rollback', body: {}, status: 409 }),
    ],
    // a route that reads no body refuses one, rather than act as if the caller had asked for nothing
    [
      'rollback naming a version it cannot choose',
      () => ({ method: 'POST', url: '/admin/models/rollback', body: { versionId: 1 }, status: 400, field: 'body' }),
    ],
    // nor does a route that changes something and reads no query take one: the guard of promote belongs in its body
    [
      'promote with its guard in the query',
      () => ({ method: 'POST', url: '/admin/models/promote?versionId=14', status: 400, field: 'versionId' }),
    ],
    [
      'a score with a query',
      () => ({ method: 'POST', url: '/v1/score?explain=true', body: score({}), status: 400, field: 'explain' }),
    ],
    [
      'archive with a junk body',
      () => ({
        method: 'POST',
        url: `/admin/models/${productionId}/archive`,
        body: { junk: 1 },
        status: 400,
        field: 'body',
      }),
    ],
    [
      'pausing the schedule with a body',
      () => ({
        method: 'POST',
        url: '/admin/training-schedule/pause',
        body: { cron: '0 * * * *' },
        status: 400,
        field: 'body',
      }),
    ],
    // 150,000 keys held the event loop 15 s before a 15 MB 400 (the route needs no token)
    [
      'an event batch with 150,000 unknown keys',
      () => ({
        method: 'POST',
        url: '/v1/events',
        body: { ...event({}), ...Object.fromEntries(Array.from({ length: 150_000 }, (_, i) => [`k${i}`, 1])) },
        status: 400,
        field: 'body',
      }),
    ],
    [
      'a score whose fusion has 95,000 weights (the fast path must not pass it)',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({
          fusion: { type: 'sum', weights: Object.fromEntries(Array.from({ length: 95_000 }, (_, i) => [`k${i}`, 1])) },
        }),
        status: 400,
        field: 'fusion',
      }),
    ],
    [
      'a score whose context has 95,000 keys',
      () => ({
        method: 'POST',
        url: '/v1/score',
        body: score({ context: Object.fromEntries(Array.from({ length: 95_000 }, (_, i) => [`k${i}`, 1])) }),
        status: 400,
        field: 'context',
      }),
    ],
  ];

  it.each(attacks)('%s: a 4xx naming the field, never a 5xx', async (_, build) => {
    const attack = await build();
    const response = await send(attack);
    expect({ status: response.statusCode, body: response.body.slice(0, 600) }).toMatchObject({ status: attack.status });
    if (attack.field) {
      const body = response.json<{ message: string | string[]; errors?: { field: string }[] }>();
      const named = body.errors?.map((e) => e.field) ?? [];
      const text = [body.message].flat().join(' ');
      expect(named.includes(attack.field) || text.includes(attack.field)).toBe(true);
    }
  });

  it('names a list where an object belongs by its own path, and nothing it does not hold', async () => {
    const errors = async (attack: Omit<Attack, 'status' | 'field'>) =>
      (await send(attack)).json<{ errors: { field: string; message: string }[] }>().errors;
    const objectAt = (field: string) => [{ field, message: `${field} must be an object` }];
    expect(await errors({ method: 'PUT', url: '/v1/items/features', body: { entities: [[]] } })).toEqual(
      objectAt('entities.0'),
    );
    expect(await errors({ method: 'POST', url: '/v1/events', body: { events: [null] } })).toEqual(objectAt('events.0'));
    expect(await errors({ method: 'POST', url: '/admin/training-jobs', body: { source: [null] } })).toEqual(
      objectAt('source'),
    );
    expect(
      await errors({
        method: 'PUT',
        url: `/admin/models/${productionId}/rollout-policy`,
        body: policy({ tasks: { click: [] } }),
      }),
    ).toEqual(objectAt('tasks.click'));
  });

  it('answers the crafted 2,000,000-bucket artifact in well under a second, without holding memory', async () => {
    const artifact = await craftedArtifact(TWO_MILLION_BUCKETS);
    global.gc?.();
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      const response = await send({ method: 'POST', url: '/admin/models', body: { artifact } });
      expect(response.json().message.join(' ')).toMatch(/preprocessing\.categorical\[1\]" declares 2000001 rows × 64/);
    }
    const seconds = (performance.now() - started) / 1000;
    const grownMb = (process.memoryUsage().rss - rss) / 2 ** 20;
    process.stdout.write(`crafted artifact: 3 uploads in ${seconds.toFixed(3)} s, RSS ${grownMb.toFixed(1)} MB more\n`);
    // 2,000,001 × 64 float32 would be 488 MB per upload.
    expect(grownMb).toBeLessThan(200);
  });

  it('refuses an artifact that declares more weights than MODEL_MAX_PARAMETERS', async () => {
    const small = await createApiApp({ ADMIN_TOKEN: TOKEN, MODEL_MAX_PARAMETERS: '100' });
    try {
      const response = await small.inject({
        method: 'POST',
        url: '/admin/models',
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: { artifact: (await tinyArtifact()).artifact.toString('base64') },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ errors: [{ field: 'artifact' }] });
      expect(response.json().message.join(' ')).toMatch(/past the limit of 100 parameters/);
    } finally {
      await small.close();
    }
  });

  it('reaches every route the app registers, old and new (a route added without corpus entries fails here)', () => {
    const unreached = [...routes].filter(([, statuses]) => statuses.length === 0).map(([route]) => route);
    expect(unreached).toEqual([]);
    // The hook saw Nest's routes, Bull Board's and Swagger's alike.
    expect([...routes.keys()]).toEqual(
      expect.arrayContaining(['PUT /admin/models/:id/rollout-policy', 'GET /admin/queues/static/*', 'GET /docs/*']),
    );
  });

  it('stays healthy and wrote nothing partial', async () => {
    expect((await send({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    expect((await send({ method: 'POST', url: '/v1/score', body: score({}) })).statusCode).toBe(200);
    expect(await counts()).toEqual(before);
    expect(await jobIds()).toEqual(jobsBefore);
    expect(tally.requests).toBeGreaterThanOrEqual(60);
    expect(tally.server).toBe(0);
  });
});
