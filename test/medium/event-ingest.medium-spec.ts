import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner';

import { EventRepository, FeatureRepository, FeaturesRepositoryModule, feedKey, type EventFeed } from '@app/db';

import { createMediumModule, runToken } from './medium.module';

describe('EventRepository.insertNew with event-fed lists (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  let events: EventRepository;
  const token = runToken('event-ingest');
  const id = (name: string) => `${token}-${name}`;
  const at = (minute: number) => new Date(Date.UTC(2024, 0, 1, 0, minute));
  const feeds: EventFeed[] = [
    { feature: 'user_recent_clicks', task: 'click', maxLength: 3 },
    { feature: 'user_recent_genres', task: 'click', maxLength: 2, itemFeature: 'item_genre' },
  ];
  const click = (name: string, user: string, item: string, minute: number) => ({
    eventId: id(name),
    userId: id(user),
    itemId: id(item),
    labels: { click: 1 },
    requestId: null,
    modelVersionId: null,
    context: null,
    occurredAt: at(minute),
  });
  const lists = async (user: string) =>
    (await moduleRef.get(FeatureRepository).findMany({ user: [id(user)], item: [] })).user.get(id(user));
  /** The statements of one ingest, named by what they do. */
  const statements = async (batch: ReturnType<typeof click>[]) => {
    const query = jest.spyOn(PostgresQueryRunner.prototype, 'query');
    try {
      await events.insertNew(batch, feeds);
      return query.mock.calls.map(([sql]) =>
        /^\s*(START|COMMIT)/.test(sql)
          ? sql.trim().split(/\s/)[0]
          : /INSERT INTO events/.test(sql)
            ? 'insert'
            : /INSERT INTO user_features/.test(sql)
              ? 'lock'
              : /RETURNING u.entity_id/.test(sql)
                ? 'append'
                : /^\s*WITH f AS/.test(sql)
                  ? 'rebuild'
                  : sql,
      );
    } finally {
      query.mockRestore();
    }
  };

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [FeaturesRepositoryModule] });
    events = moduleRef.get(EventRepository);
    await moduleRef.get(FeatureRepository).upsert('item', [
      { id: id('a'), features: { item_genre: 'drama' } },
      { id: id('b'), features: { item_genre: 'news' } },
      { id: id('c'), features: { item_genre: 'sport' } },
    ]);
  });

  afterAll(async () => {
    const db = moduleRef.get(DataSource);
    await db.query(`DELETE FROM events WHERE event_id LIKE $1`, [`${token}-%`]);
    for (const table of ['user_features', 'item_features'])
      await db.query(`DELETE FROM ${table} WHERE entity_id LIKE $1`, [`${token}-%`]);
    await moduleRef.close();
  });

  it('keeps the first copy of an id repeated in a batch', async () => {
    // 200 ids each sent twice, the second copy another user's: Postgres's sort would keep either copy of a tie.
    const batch = Array.from({ length: 200 }, (_, i) => [
      click(`dup-${i}`, 'dup-first', 'a', 10),
      click(`dup-${i}`, 'dup-second', 'b', 11),
    ]).flat();
    expect(await events.insertNew(batch)).toMatchObject({ stored: 200 });
    const users: { user_id: string; n: number }[] = await moduleRef
      .get(DataSource)
      .query(`SELECT user_id, count(*)::int AS n FROM events WHERE event_id LIKE $1 GROUP BY user_id`, [
        `${id('dup-')}%`,
      ]);
    expect(users).toEqual([{ user_id: id('dup-first'), n: 200 }]);
  });

  it('says which feeds are marked to fill again, not those with no record (no longer served)', async () => {
    const named = (feature: string): EventFeed => ({ feature: id(feature), task: 'click', maxLength: 3 });
    const [filled, reset, never] = [named('filled'), named('reset'), named('never')];
    const db = moduleRef.get(DataSource);
    await db.query(`INSERT INTO event_feed_backfills (feed, done_at) VALUES ($1, now()), ($2, NULL)`, [
      feedKey(filled),
      feedKey(reset),
    ]);
    try {
      expect(await events.unfilled([filled, reset, never])).toEqual([reset]);
      expect(await events.unfilled([])).toEqual([]);
    } finally {
      await db.query('DELETE FROM event_feed_backfills WHERE feed = ANY($1::text[])', [
        [feedKey(filled), feedKey(reset)],
      ]);
    }
  });

  it('backfills a feed over the lists another feed of its name left, emptying those its events do not fill', async () => {
    const name = id('recent');
    const byClicks: EventFeed = { feature: name, task: 'click', maxLength: 3 };
    const byLikes: EventFeed = { feature: name, task: 'like', maxLength: 3 };
    // Lists fed by clicks (for a version since archived): one user never liked anything, the other did.
    await events.insertNew([click('bf-1', 'clicker', 'i1', 1), click('bf-2', 'liker', 'i2', 2)], [byClicks]);
    await events.insertNew([{ ...click('bf-3', 'liker', 'i3', 3), labels: { like: 1 } }], []);
    expect((await lists('clicker'))?.[name]).toEqual([id('i1')]);
    const db = moduleRef.get(DataSource);
    try {
      await expect(events.backfill(byLikes, { rebuilt: async () => undefined })).resolves.toEqual({
        users: expect.any(Number),
      });
      expect((await lists('clicker'))?.[name]).toEqual([]);
      expect((await lists('liker'))?.[name]).toEqual([id('i3')]);
    } finally {
      await db.query('DELETE FROM event_feed_backfills WHERE feed = $1', [feedKey(byLikes)]);
    }
  });

  it('appends newer events to every fed list of a user in one statement, reading no past event again', async () => {
    // The first positive events build the lists (nothing to append to yet): one rebuild for both lists and users.
    expect(await statements([click('1', 'u', 'a', 1), click('2', 'v', 'b', 1)])).toEqual([
      'START',
      'insert',
      'lock',
      'append',
      'rebuild',
      'COMMIT',
    ]);
    // Newer events of both users: appended to both lists of each, whatever the number of lists.
    expect(await statements([click('3', 'u', 'b', 2), click('4', 'v', 'c', 2), click('5', 'u', 'c', 3)])).toEqual([
      'START',
      'insert',
      'lock',
      'append',
      'COMMIT',
    ]);
    expect(await lists('u')).toMatchObject({
      user_recent_clicks: [id('a'), id('b'), id('c')],
      user_recent_genres: ['news', 'sport'],
    });
    expect(await lists('v')).toMatchObject({
      user_recent_clicks: [id('b'), id('c')],
      user_recent_genres: ['news', 'sport'],
    });
  });

  it('rebuilds the lists of a late event by time, in one statement for all of them', async () => {
    expect(await statements([click('6', 'u', 'a', 0), click('7', 'v', 'a', 4)])).toEqual([
      'START',
      'insert',
      'lock',
      'append',
      'rebuild',
      'COMMIT',
    ]);
    // u's late click (minute 0) takes its place by time, out of the last 3; v's newer one is appended.
    expect(await lists('u')).toMatchObject({
      user_recent_clicks: [id('a'), id('b'), id('c')],
      user_recent_genres: ['news', 'sport'],
    });
    expect(await lists('v')).toMatchObject({
      user_recent_clicks: [id('b'), id('c'), id('a')],
      user_recent_genres: ['sport', 'drama'],
    });
  });
});
