import type { TestingModule } from '@nestjs/testing';

import { REDIS, RedisModule, type RedisClient } from '@app/redis';

import { FeatureCacheRepository, type EntityRef } from '../../apps/api/src/features/feature-cache.repository';
import { createMediumModule, runToken } from './medium.module';

describe('FeatureCacheRepository (medium: real Redis)', () => {
  let moduleRef: TestingModule;
  let cache: FeatureCacheRepository;
  const token = runToken('feature-cache');
  const user = (name: string): EntityRef => ({ kind: 'user', id: `${token}-${name}` });
  const [schemaA, schemaB] = [`${token}-a`, `${token}-b`];

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [RedisModule], providers: [FeatureCacheRepository] });
    cache = moduleRef.get(FeatureCacheRepository);
  });

  afterAll(async () => {
    const redis = moduleRef.get<RedisClient>(REDIS);
    const keys = [...(await redis.keys(`feat:${token}-*`)), ...(await redis.keys(`feat-gen:*user:${token}-*`))];
    if (keys.length > 0) await redis.del(keys);
    await moduleRef.close();
  });

  it('misses, is filled with the generation of the miss, then hits (null too: known not to exist)', async () => {
    const [a, b] = [user('a'), user('b')];
    const misses = await cache.read(schemaA, [a, b]);
    expect(misses.map((m) => m.hit)).toEqual([false, false]);
    await cache.fill(
      schemaA,
      [a, b].map((entity, i) => ({
        entity,
        generation: (misses[i] as { generation: string }).generation,
        features: i === 0 ? { segment: 's' } : null,
      })),
    );
    expect(await cache.read(schemaA, [a, b])).toEqual([
      { hit: true, features: { segment: 's' } },
      { hit: true, features: null },
    ]);
  });

  it('invalidates an entity under every schema version with one write', async () => {
    const c = user('c');
    for (const schema of [schemaA, schemaB]) {
      const [miss] = await cache.read(schema, [c]);
      await cache.fill(schema, [{ entity: c, generation: (miss as { generation: string }).generation, features: {} }]);
    }
    await cache.invalidate('user', [c.id]);
    expect((await cache.read(schemaA, [c]))[0].hit).toBe(false);
    expect((await cache.read(schemaB, [c]))[0].hit).toBe(false);
  });

  it('keeps a fill that raced a write invalid: it carries the generation from before the write', async () => {
    const d = user('d');
    const [miss] = await cache.read(schemaA, [d]);
    await cache.invalidate('user', [d.id]);
    await cache.fill(schemaA, [{ entity: d, generation: (miss as { generation: string }).generation, features: {} }]);
    expect((await cache.read(schemaA, [d]))[0].hit).toBe(false);
  });
});
