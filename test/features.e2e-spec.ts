import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { FeatureRepository } from '@app/db';
import { CACHE_REDIS } from '@app/redis';

import { entryKey, FeatureCacheRepository } from '../apps/api/src/features/feature-cache.repository';
import { FeatureStoreService, type FeatureSchemaRef } from '../apps/api/src/features/feature-store.service';
import { createApiApp } from './api-app.factory';

const V1: FeatureSchemaRef = { version: 'schema-v1', featureNames: ['age', 'segment', 'genre', 'price'] };

describe('feature store (e2e)', () => {
  let app: NestFastifyApplication;
  let store: FeatureStoreService;
  let redis: Redis;

  const put = (url: string, payload: unknown) => app.inject({ method: 'PUT', url, payload: payload as object });
  /** The 400 body as text, to look for the field it names. */
  const rejection = async (url: string, payload: unknown): Promise<string> => {
    const response = await put(url, payload);
    expect(response.statusCode).toBe(400);
    return response.body;
  };

  beforeAll(async () => {
    app = await createApiApp();
    store = app.get(FeatureStoreService);
    redis = app.get(CACHE_REDIS); // the connection the feature cache reads with
  });

  beforeEach(async () => {
    await app.get(DataSource).query('TRUNCATE user_features, item_features');
    for (const pattern of ['feat:*', 'feat-gen:*']) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(keys);
    }
  });

  afterAll(() => app.close());

  it('serves what was PUT, projected onto the schema, then from the cache', async () => {
    expect((await put('/v1/users/u1/features', { features: { age: 31, segment: 's1', unused: true } })).json()).toEqual(
      { written: 1 },
    );
    expect((await put('/v1/items/i1/features', { features: { genre: 'g2', price: 4.5 } })).statusCode).toBe(200);
    expect((await put('/v1/items/i2/features', { features: { genre: null } })).statusCode).toBe(200);

    const first = await store.fetch(V1, 'u1', ['i1', 'i2']);
    expect(first).toEqual({
      user: { age: 31, segment: 's1' },
      items: [{ genre: 'g2', price: 4.5 }, { genre: null }],
      cacheHits: 0,
      cacheMisses: 3,
      cacheUnavailable: 0,
    });
    const second = await store.fetch(V1, 'u1', ['i1', 'i2']);
    expect(second).toEqual({ ...first, cacheHits: 3, cacheMisses: 0 });
  });

  it('reads the cache in one Redis round trip and the misses in one Postgres query', async () => {
    await put('/v1/users/u1/features', { features: { age: 1 } });
    await put('/v1/items/features', {
      entities: [
        { id: 'i1', features: { price: 1 } },
        { id: 'i2', features: { price: 2 } },
      ],
    });
    const mget = jest.spyOn(redis, 'mget');
    const findMany = jest.spyOn(app.get(FeatureRepository), 'findMany');
    try {
      await store.fetch(V1, 'u1', ['i1', 'i2', 'i3']);
      expect(mget).toHaveBeenCalledTimes(1);
      expect(findMany).toHaveBeenCalledTimes(1);
      expect(findMany).toHaveBeenCalledWith({ user: ['u1'], item: ['i1', 'i2', 'i3'] });
    } finally {
      mget.mockRestore();
      findMany.mockRestore();
    }
  });

  it('sees an update at the next fetch', async () => {
    await put('/v1/users/u1/features', { features: { age: 31 } });
    await store.fetch(V1, 'u1', []);
    expect((await store.fetch(V1, 'u1', [])).cacheHits).toBe(1);

    await put('/v1/users/u1/features', { features: { age: 32, segment: 's3' } });
    expect(await store.fetch(V1, 'u1', [])).toMatchObject({ user: { age: 32, segment: 's3' }, cacheMisses: 1 });
    // The bulk route invalidates as well.
    await put('/v1/users/features', { entities: [{ id: 'u1', features: { age: 33 } }] });
    expect((await store.fetch(V1, 'u1', [])).user).toEqual({ age: 33 });
  });

  it('returns undefined for entities stored nowhere, caches that briefly, and drops it at the first PUT', async () => {
    await put('/v1/items/i1/features', { features: { price: 9 } });
    const first = await store.fetch(V1, 'nobody', ['i1', 'ghost']);
    expect(first).toEqual({
      user: undefined,
      items: [{ price: 9 }, undefined],
      cacheHits: 0,
      cacheMisses: 3,
      cacheUnavailable: 0,
    });
    expect(await store.fetch(V1, 'nobody', ['i1', 'ghost'])).toEqual({ ...first, cacheHits: 3, cacheMisses: 0 });
    const ttl = await redis.ttl(entryKey('schema-v1', { kind: 'item', id: 'ghost' }));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);

    await put('/v1/items/ghost/features', { features: { price: 1 } });
    expect((await store.fetch(V1, 'nobody', ['i1', 'ghost'])).items).toEqual([{ price: 9 }, { price: 1 }]);
  });

  it('never reads a projection cached for another schema version', async () => {
    await put('/v1/users/u1/features', { features: { age: 31, segment: 's1' } });
    expect((await store.fetch({ version: 'schema-a', featureNames: ['age'] }, 'u1', [])).user).toEqual({ age: 31 });
    const other = await store.fetch({ version: 'schema-b', featureNames: ['age', 'segment'] }, 'u1', []);
    expect(other).toMatchObject({ user: { age: 31, segment: 's1' }, cacheMisses: 1 });
    // An update invalidates the entity under every schema version at once.
    await put('/v1/users/u1/features', { features: { age: 40, segment: 's2' } });
    expect((await store.fetch({ version: 'schema-a', featureNames: ['age'] }, 'u1', [])).user).toEqual({ age: 40 });
    expect((await store.fetch({ version: 'schema-b', featureNames: ['age', 'segment'] }, 'u1', [])).user).toEqual({
      age: 40,
      segment: 's2',
    });
  });

  it('ignores a cache fill that raced a write (read before it, filled after it)', async () => {
    const cache = app.get(FeatureCacheRepository);
    const user = { kind: 'user' as const, id: 'u1' };
    await put('/v1/users/u1/features', { features: { age: 1 } });
    const [miss] = await cache.read(V1.version, [user]);
    expect(miss.hit).toBe(false);
    await put('/v1/users/u1/features', { features: { age: 2 } });
    await cache.fill(V1.version, [{ entity: user, generation: miss.hit ? '' : miss.generation, features: { age: 1 } }]);
    expect(await store.fetch(V1, 'u1', [])).toMatchObject({ user: { age: 2 }, cacheMisses: 1 });
  });

  it('upserts 10,000 entities in one call and rejects 10,001', async () => {
    const entities = Array.from({ length: 10_000 }, (_, i) => ({
      id: `i${i}`,
      features: { price: i, genre: `g${i % 7}` },
    }));
    const response = await put('/v1/items/features', { entities });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ written: 10_000 });
    const [{ count }] = await app.get(DataSource).query('SELECT count(*)::int AS count FROM item_features');
    expect(count).toBe(10_000);
    expect((await store.fetch(V1, 'u1', ['i0', 'i9999'])).items).toEqual([
      { price: 0, genre: 'g0' },
      { price: 9999, genre: 'g3' },
    ]);

    const tooMany = await put('/v1/items/features', { entities: [...entities, { id: 'one-more', features: {} }] });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().errors).toContainEqual({
      field: 'entities',
      message: 'entities must contain no more than 10000 elements',
    });
  });

  it("names the failing feature as the 400's field, not the map that holds it", async () => {
    const fields = async (url: string, payload: unknown) =>
      (await put(url, payload)).json<{ errors: { field: string }[] }>().errors.map((e) => e.field);
    expect(await fields('/v1/users/u1/features', { features: { 'age in years': { x: 1 } } })).toEqual([
      'features.age in years',
    ]);
    expect(await fields('/v1/items/features', { entities: [{ id: 'a', features: { ok: 1, tags: [1] } }] })).toEqual([
      'entities.0.features.tags',
    ]);
    // A problem of the map itself names the map.
    expect(await fields('/v1/users/u1/features', { features: { '': 1 } })).toEqual(['features']);
  });

  it('answers 400 naming the field for malformed bodies and ids, storing nothing', async () => {
    expect(await rejection('/v1/users/u1/features', { features: { age: { years: 3 } } })).toContain(
      'features.age must be a number (within ±1e18), string, boolean, list of strings or null',
    );
    // A float32 in the model: beyond it, every score of the user's requests was NaN.
    expect(await rejection('/v1/users/u1/features', { features: { age: 1e39 } })).toContain(
      'features.age must be a number (within ±1e18)',
    );
    expect(await rejection('/v1/users/u1/features', { features: { tags: ['a', 1] } })).toContain(
      'features.tags[1] must be a string',
    );
    expect(await rejection('/v1/users/u1/features', {})).toContain('features is required');
    expect(await rejection('/v1/users/u1/features', { features: [] })).toContain('features must be an object');
    expect(await rejection('/v1/users/u1/features', { features: {}, extra: 1 })).toContain('extra is not a field');
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, i]));
    expect(await rejection('/v1/users/u1/features', { features: many })).toContain(
      'features must have at most 256 features',
    );
    expect(await rejection('/v1/users/u1/features', { features: { name: 'a\u0000b' } })).toContain(
      'features.name must not contain NUL',
    );

    expect(await rejection('/v1/users/features', { entities: [] })).toContain(
      'entities must contain at least 1 elements',
    );
    expect(
      await rejection('/v1/users/features', {
        entities: [
          { id: 'a', features: {} },
          { id: 'b', features: { x: {} } },
        ],
      }),
    ).toContain('entities.1.features.x must be a number (within ±1e18), string, boolean, list of strings or null');
    expect(await rejection('/v1/users/features', { entities: [{ features: {} }] })).toContain(
      'entities.0.id is required',
    );
    expect(await rejection('/v1/users/features', { entities: [{ id: 'a', features: {}, more: 1 }] })).toContain(
      'entities.0.more is not a field',
    );
    const duplicate = await put('/v1/users/features', {
      entities: [
        { id: 'a', features: {} },
        { id: 'b', features: {} },
        { id: 'a', features: {} },
      ],
    });
    expect(duplicate.statusCode).toBe(400);
    expect(duplicate.json().errors).toEqual([
      { field: 'entities.2.id', message: 'entities.2.id repeats entities.0.id (ids must be unique within a call)' },
    ]);

    const [{ count }] = await app.get(DataSource).query('SELECT count(*)::int AS count FROM user_features');
    expect(count).toBe(0);
  });

  // Needs the Fastify router to accept path parameters longer than its default 100 characters (maxParamLength).
  it('accepts ids of up to 256 characters in the path and names the id beyond', async () => {
    expect((await put(`/v1/users/${'x'.repeat(256)}/features`, { features: {} })).json()).toEqual({ written: 1 });
    expect(await rejection(`/v1/users/${'x'.repeat(257)}/features`, { features: {} })).toContain(
      'id must be shorter than or equal to 256 characters',
    );
  });
});
