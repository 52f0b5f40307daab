import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { FeatureRepository, FeaturesRepositoryModule } from '@app/db';

import { createMediumModule, runToken } from './medium.module';

describe('FeatureRepository (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  let features: FeatureRepository;
  const token = runToken('feature-repository');
  const id = (name: string) => `${token}-${name}`;

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [FeaturesRepositoryModule] });
    features = moduleRef.get(FeatureRepository);
  });

  afterAll(async () => {
    const dataSource = moduleRef.get(DataSource);
    for (const table of ['user_features', 'item_features'])
      await dataSource.query(`DELETE FROM ${table} WHERE entity_id LIKE $1`, [`${token}-%`]);
    await moduleRef.close();
  });

  it('stores users and items apart and reads them back in one call; unknown ids are absent', async () => {
    await features.upsert('user', [{ id: id('u1'), features: { segment: 'a', age: 31, recent: ['x', 'y'] } }]);
    await features.upsert('item', [{ id: id('i1'), features: { genre: 'drama', fresh: true } }]);
    const found = await features.findMany({ user: [id('u1'), id('nobody')], item: [id('i1'), id('u1')] });
    expect(Object.fromEntries(found.user)).toEqual({ [id('u1')]: { segment: 'a', age: 31, recent: ['x', 'y'] } });
    expect(Object.fromEntries(found.item)).toEqual({ [id('i1')]: { genre: 'drama', fresh: true } });
  });

  it('replaces an entity whole (PUT semantics), a batch at once', async () => {
    await features.upsert('user', [
      { id: id('u2'), features: { segment: 'a', age: 20 } },
      { id: id('u3'), features: { segment: 'b' } },
    ]);
    await features.upsert('user', [{ id: id('u2'), features: { segment: 'c' } }]);
    const { user } = await features.findMany({ user: [id('u2'), id('u3')], item: [] });
    expect(user.get(id('u2'))).toEqual({ segment: 'c' });
    expect(user.get(id('u3'))).toEqual({ segment: 'b' });
  });

  it("keeps a user's event-fed lists a write does not name; one it names is the writer's, its head cleared", async () => {
    const dataSource = moduleRef.get(DataSource);
    const head = { feed: 'click:item_id:10', at: '2026-12-01T00:00:00.000Z', id: 'e9' };
    await features.upsert('user', [{ id: id('u4'), features: { segment: 'a', clicks: ['i1', 'i2'], tags: ['t'] } }]);
    await dataSource.query(`UPDATE user_features SET fed_heads = $2 WHERE entity_id = $1`, [
      id('u4'),
      { clicks: head, genres: head },
    ]);
    const stored = async () =>
      (await dataSource.query(`SELECT features, fed_heads FROM user_features WHERE entity_id = $1`, [id('u4')]))[0] as {
        features: object;
        fed_heads: object;
      };

    // A nightly profile write: the fed list stays with its head; `tags`, not fed, goes as PUT replaces the row.
    await features.upsert('user', [{ id: id('u4'), features: { segment: 'b', age: 40 } }]);
    expect(await stored()).toEqual({
      features: { segment: 'b', age: 40, clicks: ['i1', 'i2'] },
      fed_heads: { clicks: head, genres: head },
    });

    await features.upsert('user', [{ id: id('u4'), features: { segment: 'b', clicks: ['i7'] } }]);
    expect(await stored()).toEqual({ features: { segment: 'b', clicks: ['i7'] }, fed_heads: { genres: head } });
  });

  it('stores nothing of a batch that repeats an id', async () => {
    await expect(
      features.upsert('item', [
        { id: id('i2'), features: { genre: 'a' } },
        { id: id('i2'), features: { genre: 'b' } },
      ]),
    ).rejects.toThrow();
    expect((await features.findMany({ user: [], item: [id('i2')] })).item.size).toBe(0);
  });
});
