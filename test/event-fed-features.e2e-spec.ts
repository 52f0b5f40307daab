import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';

import { EventRepository } from '@app/db';
import { ModelRegistryService } from '@app/registry';

import { FedListBackfill } from '../apps/api/src/events/fed-list-backfill.service';
import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import { createApiApp } from './api-app.factory';
import { seedModelVersion, TINY_SPEC, tinyItem, tinyUser } from './fixtures/model.fixture';

/**
 * TINY_SPEC, its user_recent_genres fed by the genres of the items clicked (and weighed against each candidate's genre
 * by attention), and a list of the user's last three clicked items, fed by click events (hashed: any item id has a
 * row).
 */
const FEATURES = [
  ...TINY_SPEC.features.map((f) =>
    f.type === 'sequence' && f.name === 'user_recent_genres'
      ? {
          ...f,
          pooling: 'attention' as const,
          target: 'item_genre',
          fromEvents: { task: 'click', itemFeature: 'item_genre' },
        }
      : f,
  ),
  {
    name: 'user_recent_clicks',
    type: 'sequence' as const,
    hashBuckets: 64,
    maxLength: 3,
    fromEvents: { task: 'click' },
  },
];

/** Waits for `condition`, at most 10 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('user features fed by events (e2e: real Postgres and Redis)', () => {
  let app: NestFastifyApplication;
  let db: DataSource;

  const inject = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) =>
    app.inject({ method, url, payload });
  /** As stored in Postgres, the feature store's source of truth. */
  const stored = async (userId: string) =>
    ((await db.query('SELECT features FROM user_features WHERE entity_id = $1', [userId]))[0]?.features ??
      {}) as Record<string, unknown>;
  const clicks = async (userId: string) => (await stored(userId)).user_recent_clicks;
  const score = async (userId: string) => {
    const response = await inject('POST', '/v1/score', { userId, itemIds: ['i-1', 'i-2'] });
    expect(response.statusCode).toBe(200);
    return response.json().items.map((item: { scores: { click: number } }) => item.scores.click) as number[];
  };
  const click = (eventId: string, userId: string, itemId: string, occurredAt: string, clicked = 1) => ({
    eventId,
    userId,
    itemId,
    labels: { click: clicked },
    occurredAt,
  });

  beforeAll(async () => {
    app = await createApiApp();
    db = app.get(DataSource);
    await db.query(
      'TRUNCATE events, user_features, item_features, model_versions, rollout_events, event_feed_backfills CASCADE',
    );
    await seedModelVersion(db, 'production', { training: { features: FEATURES } });
    await app.get(ModelLifecycleService).refresh();
    await inject('PUT', '/v1/users/u-1/features', { features: tinyUser(1) });
    for (const i of [1, 2]) await inject('PUT', `/v1/items/i-${i}/features`, { features: tinyItem(i) });
  });

  afterAll(async () => {
    await db.query(
      'TRUNCATE events, user_features, item_features, model_versions, rollout_events, event_feed_backfills CASCADE',
    );
    await app.close();
  });

  it('appends a clicked item to the user list, and the very next score reflects it', async () => {
    const before = await score('u-1'); // and the user's features are now cached
    const posted = await inject('POST', '/v1/events', {
      events: [click('c1', 'u-1', 'i-7', '2026-01-01T10:00:00Z')],
    });
    expect(posted.json()).toEqual({ received: 1, stored: 1, duplicates: 0 });
    expect(await clicks('u-1')).toEqual(['i-7']);
    const after = await score('u-1');
    expect(after[0]).not.toBeCloseTo(before[0], 6);
    // The features written before are kept beside the lists; a fed list's own is its events' (i-7 has no genre).
    expect(await stored('u-1')).toMatchObject({ ...tinyUser(1), user_recent_genres: [] });
  });

  it('keeps the last maxLength clicks, most recent last, each event once; a non-click appends nothing', async () => {
    const batch = [
      click('c4', 'u-1', 'i-40', '2026-01-01T13:00:00Z'),
      click('c2', 'u-1', 'i-20', '2026-01-01T11:00:00Z'),
      click('c3', 'u-1', 'i-30', '2026-01-01T12:00:00Z', 0),
      click('c5', 'u-9', 'i-50', '2026-01-01T12:00:00Z'), // a user stored nowhere yet
    ];
    expect((await inject('POST', '/v1/events', { events: batch })).statusCode).toBe(200);
    expect(await clicks('u-1')).toEqual(['i-7', 'i-20', 'i-40']);
    expect(await clicks('u-9')).toEqual(['i-50']);
    // Posted again, with one new click: only the new one is appended, the oldest drops out.
    const again = await inject('POST', '/v1/events', {
      events: [...batch, click('c6', 'u-1', 'i-60', '2026-01-01T14:00:00Z')],
    });
    expect(again.json()).toEqual({ received: 5, stored: 1, duplicates: 4 });
    expect(await clicks('u-1')).toEqual(['i-20', 'i-40', 'i-60']);
  });

  it("appends the clicked item's genre to a list fed by an item feature; the next score weighs it per candidate", async () => {
    const genres = async () => (await stored('u-1')).user_recent_genres;
    // The list is its events' (as training rebuilds it): the value PUT before is replaced, and the items clicked so
    // far are stored nowhere, so they add no genre.
    expect(await genres()).toEqual([]);
    const before = await score('u-1');
    await inject('POST', '/v1/events', { events: [click('c8', 'u-1', 'i-2', '2026-01-01T15:00:00Z')] });
    expect(await genres()).toEqual([tinyItem(2).item_genre]);
    expect(await clicks('u-1')).toEqual(['i-40', 'i-60', 'i-2']);
    const after = await score('u-1');
    expect(after[0]).not.toBeCloseTo(before[0], 6);
    expect(after[1]).not.toBeCloseTo(before[1], 6);
    expect(after[1] - before[1]).not.toBeCloseTo(after[0] - before[0], 6); // per candidate, not one shift for all
  });

  it('replaces a stored value that is not a list', async () => {
    await inject('PUT', '/v1/users/u-2/features', { features: { ...tinyUser(2), user_recent_clicks: 'oops' } });
    await inject('POST', '/v1/events', { events: [click('c7', 'u-2', 'i-70', '2026-01-01T10:00:00Z')] });
    expect(await clicks('u-2')).toEqual(['i-70']);
  });

  it('places an event that arrives late by when it occurred, not as the most recent', async () => {
    await inject('POST', '/v1/events', {
      events: [click('l2', 'u-3', 'i-2', '2026-01-01T12:00:00Z'), click('l3', 'u-3', 'i-3', '2026-01-01T13:00:00Z')],
    });
    await inject('POST', '/v1/events', { events: [click('l1', 'u-3', 'i-1', '2026-01-01T11:00:00Z')] });
    expect(await clicks('u-3')).toEqual(['i-1', 'i-2', 'i-3']);
    // Older than the last maxLength: it does not enter at all.
    await inject('POST', '/v1/events', { events: [click('l0', 'u-3', 'i-0', '2026-01-01T10:00:00Z')] });
    expect(await clicks('u-3')).toEqual(['i-1', 'i-2', 'i-3']);
  });

  it('appends a newer event to a list built from events, and rebuilds one that is not theirs alone', async () => {
    const at = (hour: number) => `2026-01-02T${String(hour).padStart(2, '0')}:00:00Z`;
    const head = async (userId: string) =>
      (
        (await db.query('SELECT fed_heads FROM user_features WHERE entity_id = $1', [userId]))[0].fed_heads as Record<
          string,
          { id: string }
        >
      )['user_recent_clicks']?.id;
    await inject('POST', '/v1/events', {
      events: [click('a1', 'u-6', 'i-1', at(1)), click('a2', 'u-6', 'i-2', at(2))],
    });
    await inject('POST', '/v1/events', { events: [click('a3', 'u-6', 'i-3', at(3))] });
    expect(await clicks('u-6')).toEqual(['i-1', 'i-2', 'i-3']);
    expect(await head('u-6')).toBe('a3');
    // A list written by PUT is not the events': the next event, newer though it is, rebuilds it.
    await inject('PUT', '/v1/users/u-6/features', { features: { ...tinyUser(6), user_recent_clicks: ['x', 'y'] } });
    expect(await head('u-6')).toBeUndefined();
    await inject('POST', '/v1/events', { events: [click('a4', 'u-6', 'i-4', at(4))] });
    expect(await clicks('u-6')).toEqual(['i-2', 'i-3', 'i-4']);
    // An event stored without the list (as while no served spec fed it), then a newer one: rebuilt, both in it.
    await db.query(
      `INSERT INTO events (event_id, user_id, item_id, labels, occurred_at) VALUES ('a5', 'u-6', 'i-5', '{"click": 1}', $1)`,
      [at(5)],
    );
    await inject('POST', '/v1/events', { events: [click('a6', 'u-6', 'i-6', at(6))] });
    expect(await clicks('u-6')).toEqual(['i-4', 'i-5', 'i-6']);
    // A click on an item without a genre moves the genre list's head on and adds nothing to it.
    await inject('POST', '/v1/events', { events: [click('a7', 'u-6', 'i-77', at(7))] });
    await inject('POST', '/v1/events', { events: [click('a8', 'u-6', 'i-1', at(8))] });
    const [g1, g2] = [tinyItem(1).item_genre, tinyItem(2).item_genre];
    expect((await stored('u-6')).user_recent_genres).toEqual([g1, g2, g1]);
    expect(await clicks('u-6')).toEqual(['i-6', 'i-77', 'i-1']);
  });

  const like = (eventId: string, userId: string, itemId: string, occurredAt: string) => ({
    eventId,
    userId,
    itemId,
    labels: { like: 1 },
    occurredAt,
  });
  const likes = { name: 'user_recent_likes', type: 'sequence' as const, hashBuckets: 64, maxLength: 2 };

  it("backfills a canary's own fed list as soon as it is served, without a new event, and feeds it", async () => {
    // Likes stored while no served spec has a list of them.
    await inject('POST', '/v1/events', {
      events: [
        like('k1', 'u-4', 'i-11', '2026-01-01T09:00:00Z'),
        like('k2', 'u-4', 'i-12', '2026-01-01T10:00:00Z'),
        like('k3', 'u-4', 'i-13', '2026-01-01T11:00:00Z'),
      ],
    });
    expect((await stored('u-4')).user_recent_likes).toBeUndefined();
    const id = await seedModelVersion(db, 'candidate', {
      training: { features: [...FEATURES, { ...likes, fromEvents: { task: 'like' } }] },
    });
    // Made the canary through the registry: its models:changed notice reloads the process, which starts the fill.
    await app.get(ModelRegistryService).setCanary(id, 10, undefined, 'test');
    await until(async () => (await stored('u-4')).user_recent_likes !== undefined);
    await app.get(FedListBackfill).settled();
    expect((await stored('u-4')).user_recent_likes).toEqual(['i-12', 'i-13']);
    const [{ done }] = await db.query(
      'SELECT count(*)::int AS done FROM event_feed_backfills WHERE done_at IS NOT NULL',
    );
    expect(done).toBeGreaterThanOrEqual(1);
    const metrics = (await inject('GET', '/metrics')).body;
    expect(metrics).toMatch(/^fed_list_backfills_total\{outcome="filled"\} [1-9]/m);
    expect(metrics).toMatch(/^fed_list_backfill_users_total\{outcome="rebuilt"\} [1-9]/m);
    // The next batch feeds the canary's list.
    await inject('POST', '/v1/events', { events: [like('k4', 'u-5', 'i-14', '2026-01-01T12:00:00Z')] });
    expect((await stored('u-5')).user_recent_likes).toEqual(['i-14']);
  });

  it('fills a feed again when it is served again after a time no version served it, whatever was recorded meanwhile', async () => {
    const registry = app.get(ModelRegistryService);
    const { canary } = await registry.findServing();
    expect(canary).toBeDefined(); // the previous case's, with its list of likes
    await registry.archive(canary!.id, 'test');
    await app.get(ModelLifecycleService).refresh();
    const forgotten = await db.query('SELECT 1 FROM event_feed_backfills WHERE feed LIKE $1', ['%user_recent_likes"%']);
    expect(forgotten).toEqual([]);
    // A process that has not heard of the change yet fills the feed and records it done, from the lists as they are.
    const likesFeed = { feature: 'user_recent_likes', task: 'like', maxLength: 2 };
    expect(await app.get(EventRepository).backfill(likesFeed, { rebuilt: () => Promise.resolve() })).toEqual({
      users: expect.any(Number),
    });
    // Stored while no version feeds the list: nothing rebuilds it.
    await inject('POST', '/v1/events', { events: [like('k5', 'u-5', 'i-15', '2026-01-01T13:00:00Z')] });
    expect((await stored('u-5')).user_recent_likes).toEqual(['i-14']);
    const id = await seedModelVersion(db, 'candidate', {
      training: { features: [...FEATURES, { ...likes, fromEvents: { task: 'like' } }] },
    });
    await registry.setCanary(id, 10, undefined, 'test');
    await until(async () => (await stored('u-5')).user_recent_likes?.toString() === 'i-14,i-15');
    await app.get(FedListBackfill).settled();
  });

  it('fills a feed once when processes race for it, and not again', async () => {
    const events = app.get(EventRepository);
    const feed = { feature: 'user_recent_likes_race', task: 'like', maxLength: 5 };
    const hooks = { rebuilt: () => Promise.resolve() };
    const outcomes = await Promise.all([events.backfill(feed, hooks), events.backfill(feed, hooks)]);
    // One fills it; the other finds it claimed (or, had the first been quicker, filled).
    expect(outcomes.filter((o) => typeof o === 'object')).toEqual([{ users: 2 }]);
    expect(outcomes.filter((o) => typeof o !== 'object')).toEqual([expect.stringMatching(/^(busy|filled)$/)]);
    expect(await events.backfill(feed, hooks)).toBe('filled');
    expect((await stored('u-4')).user_recent_likes_race).toEqual(['i-11', 'i-12', 'i-13']);
  });

  it('fills a page of users at a time, each read after the last one rebuilt', async () => {
    const events = app.get(EventRepository);
    const batches: string[][] = [];
    let claimed: number | undefined;
    const outcome = await events.backfill(
      { feature: 'user_recent_likes_paged', task: 'like', maxLength: 5 },
      {
        claimed: (users) => (claimed = users),
        rebuilt: async (users) => {
          batches.push(users);
          // A user who likes something meanwhile, between two pages in id order: read with the next page.
          if (batches.length === 1)
            await events.insertNew([
              {
                ...like('k6', 'u-45', 'i-16', '2026-01-01T14:00:00Z'),
                requestId: null,
                modelVersionId: null,
                context: null,
                occurredAt: new Date('2026-01-01T14:00:00Z'),
              },
            ]);
        },
      },
      1,
    );
    expect(claimed).toBe(2);
    expect(batches).toEqual([['u-4'], ['u-45'], ['u-5']]);
    expect(outcome).toEqual({ users: 3 });
    expect((await stored('u-5')).user_recent_likes_paged).toEqual(['i-14', 'i-15']);
    expect((await stored('u-45')).user_recent_likes_paged).toEqual(['i-16']);
  });

  it('stops a fill whose claim another process took (it had stalled past the claim), and leaves that claim alone', async () => {
    const events = app.get(EventRepository);
    const feed = { feature: 'user_recent_likes_taken', task: 'like', maxLength: 5 };
    const taken = '2030-01-01 00:00:00+00';
    const rebuilt: string[][] = [];
    const outcome = await events.backfill(
      feed,
      {
        rebuilt: async (users) => {
          rebuilt.push(users);
          // After the first batch, as if this process had stalled for 10 minutes and another had claimed the feed.
          await db.query(`UPDATE event_feed_backfills SET claimed_at = $1 WHERE feed LIKE '%_taken%'`, [taken]);
        },
      },
      1,
    );
    expect(outcome).toBe('busy');
    expect(rebuilt).toHaveLength(1);
    const [row] = await db.query(
      `SELECT claimed_at = $1::timestamptz AS theirs, done_at FROM event_feed_backfills WHERE feed LIKE '%_taken%'`,
      [taken],
    );
    expect(row).toEqual({ theirs: true, done_at: null });
  });

  it('lets go of its claim when a batch fails, so that the next try fills the feed without waiting it out', async () => {
    const events = app.get(EventRepository);
    const feed = { feature: 'user_recent_likes_failed', task: 'like', maxLength: 5 };
    const down = { rebuilt: () => Promise.reject(new Error('redis down')) };
    await expect(events.backfill(feed, down)).rejects.toThrow('redis down');
    const [row] = await db.query(`SELECT claimed_at, done_at FROM event_feed_backfills WHERE feed LIKE '%_failed%'`);
    expect(row).toEqual({ claimed_at: null, done_at: null });
    expect(await events.backfill(feed, { rebuilt: () => Promise.resolve() })).toEqual({ users: expect.any(Number) });
  });

  it('feeds the lists of a version served since this process last loaded the versions served', async () => {
    const likes3 = { ...likes, name: 'user_recent_likes3', maxLength: 3, fromEvents: { task: 'like' } };
    const id = await seedModelVersion(db, 'candidate', { training: { features: [...FEATURES, likes3] } });
    // The shadow behind this process's back (no notice): it still serves production and the canary only.
    await db.query(`UPDATE model_versions SET status = 'shadow', shadow_percent = 10 WHERE id = $1`, [id]);
    try {
      const posted = await inject('POST', '/v1/events', {
        events: [like('k8', 'u-8', 'i-18', '2026-01-01T16:00:00Z')],
      });
      expect(posted.json()).toMatchObject({ stored: 1 });
      expect((await stored('u-8')).user_recent_likes3).toEqual(['i-18']);
      expect((await stored('u-8')).user_recent_likes).toEqual(['i-18']);
    } finally {
      await db.query(`UPDATE model_versions SET status = 'archived', shadow_percent = NULL WHERE id = $1`, [id]);
      await app.get(ModelLifecycleService).refresh();
    }
  });
});
