import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';

import { SERVED_SET_LOCK_KEY } from '../rollout-lock';
import type { FeatureMap } from './feature.repository';

/**
 * A user-side list fed by events (a spec's `fromEvents`, see eventFeeds in @app/mmoe): each stored event whose label
 * for `task` is positive appends its item id to the user's `feature`, which keeps its last `maxLength` values. With
 * `itemFeature`, it appends the item's stored value of that feature instead (e.g. its genre); an item stored without
 * it appends nothing.
 */
export interface EventFeed {
  feature: string;
  task: string;
  maxLength: number;
  itemFeature?: string;
}

export interface NewEvent {
  eventId: string;
  userId: string;
  itemId: string;
  /** By task name. */
  labels: Record<string, number>;
  requestId: string | null;
  modelVersionId: number | null;
  context: Record<string, unknown> | null;
  /** Sample weight (≥ 0, finite); absent or null weighs 1. */
  weight?: number | null;
  occurredAt: Date;
}

/** One labelled impression with the features of its user and item (null where none are stored). */
export interface TrainingRow {
  eventId: string;
  userId: string;
  itemId: string;
  labels: Record<string, number>;
  weight: number | null;
  occurredAt: Date;
  /** The request-time features the event was logged with (as in the score call). */
  context: FeatureMap | null;
  userFeatures: FeatureMap | null;
  itemFeatures: FeatureMap | null;
}

/** Logged impressions and their labels: the training data of the next model version. */
@Injectable()
export class EventRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Stores the events whose id is new and says how many that was; an id already stored is skipped, which makes
   * re-posting a batch harmless, and of an id repeated in the batch the first copy is kept. The users of the new positive events get their lists of
   * `feeds` brought up to date in the same transaction (updateLists): the batch and its lists are stored whole or not
   * at all. Rows are inserted in id order so that concurrent overlapping batches cannot deadlock.
   *
   * With `served`, `feeds` are those of the versions `served.ids` (the caller's view), checked against the versions
   * served now under the shared side of SERVED_SET_LOCK_KEY: a change of what is served waits for the batches under way,
   * and a batch after it whose caller has not loaded it yet feeds the lists of `served.feedsOf(the specs served now)`
   * instead, read in this transaction (another connection could wait on a pool this batch holds one of). Says which
   * feeds were fed.
   */
  insertNew(
    events: NewEvent[],
    feeds: readonly EventFeed[] = [],
    served?: { ids: readonly number[]; feedsOf: (specs: Record<string, unknown>[]) => readonly EventFeed[] },
  ): Promise<{ stored: number; feeds: readonly EventFeed[] }> {
    return this.dataSource.transaction(async (manager) => {
      let fed = feeds;
      if (served) {
        await manager.query('SELECT pg_advisory_xact_lock_shared($1)', [SERVED_SET_LOCK_KEY]);
        const rows: { id: number }[] = await manager.query(
          `SELECT id FROM model_versions WHERE status IN ('production', 'canary', 'shadow') ORDER BY id`,
        );
        const known = [...served.ids].sort((a, b) => a - b);
        if (rows.length !== known.length || rows.some(({ id }, i) => id !== known[i])) {
          const specs: { spec: Record<string, unknown> }[] = await manager.query(
            // Production first, as servedEventFeeds wants them.
            `SELECT spec FROM model_versions WHERE id = ANY($1::int[])
             ORDER BY array_position(ARRAY['production', 'canary', 'shadow'], status)`,
            [rows.map(({ id }) => id)],
          );
          fed = served.feedsOf(specs.map(({ spec }) => spec));
        }
      }
      const stored = await this.insert(manager, events);
      await this.updateLists(manager, stored, fed);
      return { stored: stored.length, feeds: fed };
    });
  }

  /**
   * Each list of a user with a new positive event holds their last maxLength positive events by when they occurred
   * (then event id), most recent last: an event posted late takes its place by time, not at the end. The users' rows
   * are locked first (created if need be), in id order: a concurrent batch for one of them waits, then reads this
   * one's events once it commits (each statement sees what was committed before it began), so both land.
   *
   * The common case is cheap: a user whose list was built from events for this feed (its head, in fed_heads) and
   * whose new events all come after its newest one, with no other positive event stored after it, gets them appended
   * (appendLists). Any other (a late event, a list written by PUT or never built, a feed changed, an event stored
   * while the feed was not served) is rebuilt from the user's events (rebuildLists). Either way a value stored by PUT
   * under a fed list's name is replaced: the list is its events', as training rebuilds it.
   */
  private async updateLists(manager: EntityManager, stored: StoredEvent[], feeds: readonly EventFeed[]): Promise<void> {
    const fed = stored.filter((e) => feeds.some((f) => (e.labels[f.task] ?? 0) > 0));
    if (fed.length === 0) return;
    await this.lockUsers(manager, [...new Set(fed.map((e) => e.userId))]);
    const appended = await this.appendLists(manager, fed, feeds);
    const rest = feeds.flatMap((feed) =>
      [...new Set(fed.filter((e) => (e.labels[feed.task] ?? 0) > 0).map((e) => e.userId))]
        .filter((user) => !appended.has(`${user}\u0000${feed.feature}`))
        .map((user) => ({ user, feed })),
    );
    if (rest.length > 0) await this.rebuildLists(manager, rest);
  }

  /** Locks the users' rows (FOR UPDATE by the upsert), creating those not stored, in id order. */
  private async lockUsers(manager: EntityManager, users: string[]): Promise<void> {
    await manager.query(
      `INSERT INTO user_features AS u (entity_id, features, updated_at)
       SELECT id, '{}'::jsonb, now() FROM unnest($1::text[]) AS r(id) ORDER BY id
       ON CONFLICT (entity_id) DO UPDATE SET updated_at = EXCLUDED.updated_at`,
      [[...users].sort()],
    );
  }

  /**
   * Appends the new positive events (`fed`, stored in this transaction) to their users' lists of every feed where the
   * head allows it (see updateLists), in one statement for all the feeds: each user's row is written once, and the
   * batch's events read once. One index range per (user, feed), the events after the head. Returns the (user, feed)
   * pairs appended to, as `user NUL feature`.
   */
  private async appendLists(
    manager: EntityManager,
    fed: StoredEvent[],
    feeds: readonly EventFeed[],
  ): Promise<Set<string>> {
    // TypeORM answers an UPDATE with [rows, count], not the rows.
    const [rows]: [{ user_id: string; fed: string[] }[], number] = await manager.query(
      `WITH f AS (SELECT * FROM ${FEEDS_SQL}),
       n AS (
         SELECT p.user_id, f.feature, f.task, f.max_length, f.key,
           coalesce(jsonb_agg(to_jsonb(v.value) ORDER BY p.occurred_at, p.event_id) FILTER (WHERE v.value IS NOT NULL), '[]') AS list,
           (array_agg(p.occurred_at ORDER BY p.occurred_at, p.event_id))[1] AS first_at,
           (array_agg(p.event_id ORDER BY p.occurred_at, p.event_id))[1] AS first_id,
           max(p.occurred_at) AS last_at,
           (array_agg(p.event_id ORDER BY p.occurred_at DESC, p.event_id DESC))[1] AS last_id
         FROM events p JOIN f ON (p.labels ->> f.task)::float8 > 0
         ${FEED_VALUE_SQL}
         WHERE p.event_id = ANY($1::text[])
         GROUP BY p.user_id, f.feature, f.task, f.max_length, f.key),
       a AS (
         SELECT n.user_id,
           jsonb_object_agg(n.feature, (
             SELECT coalesce(jsonb_agg(l.value ORDER BY l.k), '[]'::jsonb) FROM (
               SELECT value, k FROM jsonb_array_elements(c.features -> n.feature) WITH ORDINALITY AS o(value, k)
               UNION ALL
               SELECT value, k + 2147483648 FROM jsonb_array_elements(n.list) WITH ORDINALITY AS o(value, k)
               ORDER BY k DESC LIMIT n.max_length) l)) AS lists,
           jsonb_object_agg(n.feature, jsonb_build_object('feed', n.key, 'at', n.last_at, 'id', n.last_id)) AS heads,
           array_agg(n.feature) AS fed
         FROM n JOIN user_features c ON c.entity_id = n.user_id
         CROSS JOIN LATERAL (
           SELECT (c.fed_heads -> n.feature ->> 'at')::timestamptz AS at, c.fed_heads -> n.feature ->> 'id' AS id) h
         WHERE jsonb_typeof(c.features -> n.feature) = 'array'
           AND c.fed_heads -> n.feature ->> 'feed' = n.key
           AND (n.first_at, n.first_id) > (h.at, h.id)
           AND NOT EXISTS (
             SELECT 1 FROM events q
             WHERE q.user_id = n.user_id AND q.occurred_at >= h.at AND (q.occurred_at, q.event_id) > (h.at, h.id)
               AND (q.labels ->> n.task)::float8 > 0 AND q.event_id <> ALL($1::text[]))
         GROUP BY n.user_id)
       UPDATE user_features u
       SET features = u.features || a.lists, fed_heads = u.fed_heads || a.heads
       FROM a WHERE u.entity_id = a.user_id
       RETURNING u.entity_id AS user_id, a.fed`,
      [fed.map((e) => e.eventId), feedsJson(feeds)],
    );
    return new Set(rows.flatMap((r) => r.fed.map((feature) => `${r.user_id}\u0000${feature}`)));
  }

  /**
   * Sets each (user, feed) pair's list to the user's last maxLength positive events of the feed (most recent last),
   * and its head to their newest positive event, in one statement for all the pairs (a user's row written once). The
   * users' rows are locked already.
   */
  private async rebuildLists(manager: EntityManager, pairs: { user: string; feed: EventFeed }[]): Promise<void> {
    const feeds = [...new Map(pairs.map(({ feed }) => [feed.feature, feed])).values()];
    await manager.query(
      `WITH f AS (SELECT * FROM ${FEEDS_SQL}),
       r AS (
         SELECT x.user_id,
           jsonb_object_agg(f.feature, coalesce((
             SELECT jsonb_agg(w.value ORDER BY w.occurred_at, w.event_id) FROM (
               SELECT v.value, p.occurred_at, p.event_id FROM events p ${FEED_VALUE_SQL}
               WHERE p.user_id = x.user_id AND (p.labels ->> f.task)::float8 > 0 AND v.value IS NOT NULL
               ORDER BY p.occurred_at DESC, p.event_id DESC LIMIT f.max_length) w), '[]'::jsonb)) AS lists,
           jsonb_object_agg(f.feature, jsonb_build_object('feed', f.key, 'at', h.occurred_at, 'id', h.event_id)) AS heads
         FROM jsonb_to_recordset($1::jsonb) AS x(user_id text, feature text)
         JOIN f ON f.feature = x.feature
         LEFT JOIN LATERAL (
           SELECT p.occurred_at, p.event_id FROM events p WHERE p.user_id = x.user_id AND (p.labels ->> f.task)::float8 > 0
           ORDER BY p.occurred_at DESC, p.event_id DESC LIMIT 1) h ON true
         GROUP BY x.user_id)
       UPDATE user_features u
       SET features = u.features || r.lists, fed_heads = u.fed_heads || r.heads
       FROM r WHERE u.entity_id = r.user_id`,
      [JSON.stringify(pairs.map(({ user, feed }) => ({ user_id: user, feature: feed.feature }))), feedsJson(feeds)],
    );
  }

  /**
   * Of `feeds`, those marked to fill again (by a change that served them again). A feed with no record is not: the
   * change that stopped serving it forgot it, and a process that has not loaded that change yet must not fill it.
   */
  async unfilled(feeds: readonly EventFeed[]): Promise<EventFeed[]> {
    if (feeds.length === 0) return [];
    const rows: { feed: string }[] = await this.dataSource.query(
      `SELECT feed FROM event_feed_backfills WHERE feed = ANY($1::text[]) AND done_at IS NULL`,
      [feeds.map(feedKey)],
    );
    const reset = new Set(rows.map(({ feed }) => feed));
    return feeds.filter((feed) => reset.has(feedKey(feed)));
  }

  /**
   * Fills a fed list from the events stored before it was fed (a version newly served with it): once for the cluster
   * per feed (name, source and maxLength), claimed in event_feed_backfills; a claim not renewed for 10 minutes (its
   * process died) may be taken again, so each batch renews it, and a fill whose claim was taken stops. Once claimed,
   * tells `claimed` how many users have a positive event for it; rebuilds `batch` users per transaction and hands each batch's users
   * to `rebuilt` (to invalidate their cached features). Says how many users it rebuilt, or that the feed was filled
   * before, or that another process is at it. `stopping` is asked before each
   * batch: when it says so (the process shuts down) the claim is released for another process to take at once, and
   * the fill says 'busy'.
   */
  async backfill(
    feed: EventFeed,
    hooks: {
      claimed?: (users: number) => void;
      rebuilt: (users: string[]) => Promise<void>;
      stopping?: () => boolean;
    },
    batch = 500,
  ): Promise<{ users: number } | 'filled' | 'busy'> {
    const key = feedKey(feed);
    await this.dataSource.query(`INSERT INTO event_feed_backfills (feed) VALUES ($1) ON CONFLICT DO NOTHING`, [key]);
    // The claim's time, as text (a JS Date would drop its microseconds), is its token: renewed and released only by
    // the process that holds it.
    const [state]: { claim: string | null; done: boolean }[] = await this.dataSource.query(
      `WITH claim AS (
         UPDATE event_feed_backfills SET claimed_at = clock_timestamp()
         WHERE feed = $1 AND done_at IS NULL AND (claimed_at IS NULL OR claimed_at < now() - interval '10 minutes')
         RETURNING claimed_at::text AS claim)
       SELECT (SELECT claim FROM claim) AS claim, done_at IS NOT NULL AS done FROM event_feed_backfills WHERE feed = $1`,
      [key],
    );
    // No row: a change that stopped serving the feed forgot it since the insert above; nothing to fill for now.
    if (state?.claim == null) return state?.done ? 'filled' : 'busy';
    let claim = state.claim;
    const release = () =>
      this.dataSource.query(
        `UPDATE event_feed_backfills SET claimed_at = NULL WHERE feed = $1 AND claimed_at = $2::timestamptz`,
        [key, claim],
      );
    try {
      const [{ users }]: { users: number }[] = await this.dataSource.query(
        `SELECT count(DISTINCT user_id)::int AS users FROM events WHERE (labels ->> $1)::float8 > 0`,
        [feed.task],
      );
      hooks.claimed?.(users);
      // A page of users at a time, after the last one rebuilt: a process holds one batch of ids, however many users
      // there are. First the users with a positive event for the feed (in user_id order, which
      // events_user_occurred_at walks); then those whose list under this name another feed wrote (another source or
      // length, of a version no longer served), which no event of this feed rebuilds: emptied, as the events say (in
      // entity_id order, the primary key's: one pass over the users for the whole fill).
      const phases: ((after: string) => Promise<{ user_id: string }[]>)[] = [
        (after) =>
          this.dataSource.query(
            `SELECT DISTINCT user_id FROM events WHERE (labels ->> $1)::float8 > 0 AND user_id > $2 ORDER BY user_id LIMIT $3`,
            [feed.task, after, batch],
          ),
        (after) =>
          this.dataSource.query(
            `SELECT entity_id AS user_id FROM user_features
             WHERE entity_id > $2 AND fed_heads -> $1 ->> 'feed' <> $4 ORDER BY entity_id LIMIT $3`,
            [feed.feature, after, batch, key],
          ),
      ];
      let rebuilt = 0;
      for (const next of phases)
        for (let after = ''; ;) {
          if (hooks.stopping?.()) {
            await release();
            return 'busy';
          }
          const page = await next(after);
          if (page.length === 0) break;
          const slice = page.map((r) => r.user_id);
          const renewed = await this.dataSource.transaction(async (manager) => {
            const [held]: { claim: string }[] = await manager.query(
              // A SELECT over the UPDATE: TypeORM answers an UPDATE … RETURNING with [rows, count], a SELECT with its rows.
              `WITH renewed AS (
                 UPDATE event_feed_backfills SET claimed_at = clock_timestamp()
                 WHERE feed = $1 AND claimed_at = $2::timestamptz RETURNING claimed_at::text AS claim)
               SELECT claim FROM renewed`,
              [key, claim],
            );
            if (!held) return undefined;
            await this.lockUsers(manager, slice);
            await this.rebuildLists(
              manager,
              slice.map((user) => ({ user, feed })),
            );
            return held.claim;
          });
          // Taken by another process (this one stalled for 10 minutes): it fills the rest.
          if (renewed === undefined) return 'busy';
          claim = renewed;
          await hooks.rebuilt(slice);
          rebuilt += slice.length;
          after = slice[slice.length - 1];
        }
      // Done only by the holder of the claim: one that lost it after its last batch leaves the feed to the new holder.
      const [, marked]: [unknown, number] = await this.dataSource.query(
        `UPDATE event_feed_backfills SET done_at = now() WHERE feed = $1 AND claimed_at = $2::timestamptz`,
        [key, claim],
      );
      return marked === 1 ? { users: rebuilt } : 'busy';
    } catch (error) {
      // A batch or its invalidation failed (Redis down): the next try, a minute later, need not wait out the claim.
      await release().catch(() => undefined);
      throw error;
    }
  }

  private async insert(manager: EntityManager, events: NewEvent[]): Promise<StoredEvent[]> {
    // The first copy of a repeated id, chosen here: which of the tied rows ON CONFLICT met first would be the sort's.
    const first = new Map<string, NewEvent>();
    for (const e of events) if (!first.has(e.eventId)) first.set(e.eventId, e);
    const rows = [...first.values()].map((e) => ({
      event_id: e.eventId,
      request_id: e.requestId,
      user_id: e.userId,
      item_id: e.itemId,
      model_version_id: e.modelVersionId,
      labels: e.labels,
      context: e.context,
      weight: e.weight ?? null,
      occurred_at: e.occurredAt,
    }));
    return manager.query(
      `INSERT INTO events (event_id, request_id, user_id, item_id, model_version_id, labels, context, weight, occurred_at)
       SELECT event_id, request_id, user_id, item_id, model_version_id, labels, context, weight, occurred_at
       FROM jsonb_to_recordset($1::jsonb) AS r(
         event_id text, request_id text, user_id text, item_id text, model_version_id int,
         labels jsonb, context jsonb, weight double precision, occurred_at timestamptz)
       ORDER BY event_id
       ON CONFLICT (event_id) DO NOTHING
       RETURNING event_id AS "eventId", user_id AS "userId", item_id AS "itemId", labels, occurred_at AS "occurredAt"`,
      [JSON.stringify(rows)],
    );
  }

  /** Whether any event occurred in [from, to) (one probe of events_occurred_at). */
  async anyBetween(from: Date, to: Date): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `SELECT 1 FROM events WHERE occurred_at >= $1 AND occurred_at < $2 LIMIT 1`,
      [from, to],
    );
    return rows.length > 0;
  }

  /** Those of the given model version ids that name no stored version. */
  async unknownModelVersions(ids: number[]): Promise<number[]> {
    const rows: { id: number }[] = await this.dataSource.query(
      `SELECT w.id FROM unnest($1::int[]) AS w(id) WHERE NOT EXISTS (SELECT 1 FROM model_versions v WHERE v.id = w.id)`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Reads a job's events in one snapshot of the database (a REPEATABLE READ transaction): the window, its late events
   * and its replay see the same events, and `snapshot` (pg_snapshot text) says which, for the version to record: an
   * event stored after is one this read did not see (lateRows of its child). Always on the primary: a standby's
   * pg_current_snapshot() lists no transaction in progress on the primary, so an event committed just after would
   * count as seen by the parent, and no version of the lineage would ever train on it.
   */
  readInSnapshot<T>(read: (reads: SnapshotReads) => Promise<T>): Promise<T> {
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const [{ snapshot }]: { snapshot: string }[] = await manager.query(
        `SELECT pg_current_snapshot()::text AS snapshot`,
      );
      return read({
        snapshot,
        window: (from, to, feeds) => this.windowRows(manager, from, to, feeds),
        late: (after, from, to, feeds) =>
          this.trainingRowsFrom(
            manager,
            {
              filter: `AND ${storedAfter('$4')}`,
              order: 'e.occurred_at, e.event_id',
            },
            [from, to, null, after],
            feeds,
          ),
        sample: (from, to, count, seed, feeds, seen) => this.sampleRows(manager, from, to, count, seed, feeds, seen),
      });
    });
  }

  /**
   * The events that occurred in [from, to), oldest first, joined with the user's and the item's features. The stored
   * features are the current ones (the store keeps no history), except the event-fed lists of `feeds`: each row's is
   * rebuilt as it was when the event occurred, from the user's positive events strictly before it (its last
   * maxLength, most recent last), so that a row never holds its own label nor any later one.
   */
  private windowRows(db: Queryable, from: Date, to: Date, feeds: readonly EventFeed[]): Promise<TrainingRow[]> {
    return this.trainingRowsFrom(db, { filter: '', order: 'e.occurred_at, e.event_id' }, [from, to, null], feeds);
  }

  /**
   * `count` events drawn at random from [from, to) (fewer if there are fewer), reproducibly for a given seed, without
   * sorting the window: a seeded hash of each event's id keeps it with a probability a little above count / n (the
   * window's n counted first, on events_occurred_at), and only the kept ones are joined with their features and
   * ordered by the hash to take `count`. A retried job replays the same events, and what is joined, sorted and held
   * grows with `count`, not with the window. Lists as windowRows. With `seen` (a pg_snapshot), only events that
   * snapshot holds (those stored before).
   */
  private async sampleRows(
    db: Queryable,
    from: Date,
    to: Date,
    count: number,
    seed: number,
    feeds: readonly EventFeed[],
    seen?: string,
  ): Promise<TrainingRow[]> {
    if (count <= 0) return [];
    // The events to draw from: the range's (events_occurred_at answers it) less, with `seen`, those stored since (late,
    // found by their transaction on events_ingest_xid, as late() finds them). Counting those too kept far too few when
    // a late batch was large: 12 % of the replay asked for after a 60,000-event upload.
    const [{ n }]: { n: number }[] = await db.query(
      `SELECT (SELECT count(*) FROM events e WHERE e.occurred_at >= $1 AND e.occurred_at < $2)::float8 - ${
        seen === undefined
          ? '0'
          : `(SELECT count(*) FROM events e WHERE e.occurred_at >= $1 AND e.occurred_at < $2 AND ${storedAfter('$3')})`
      } AS n`,
      seen === undefined ? [from, to] : [from, to, seen],
    );
    // A margin of 4 standard deviations and a few rows: fewer than `count` are kept about once in 30,000 draws.
    const keep = Math.min(1, (count + 4 * Math.sqrt(count) + 8) / Math.max(1, n));
    const stored =
      seen === undefined ? '' : `AND (e.ingest_xid IS NULL OR pg_visible_in_snapshot(e.ingest_xid, $6::pg_snapshot))`;
    return this.trainingRowsFrom(
      db,
      { filter: `AND ${SAMPLE_HASH} < $5 ${stored}`, order: SAMPLE_HASH },
      [from, to, count, seed, keep, ...(seen === undefined ? [] : [seen])],
      feeds,
    );
  }

  /** `sql` is SQL written here, never input; $1 and $2 bound the events' time, $3 their number. */
  private async trainingRowsFrom(
    db: Queryable,
    sql: { filter: string; order: string },
    parameters: unknown[],
    feeds: readonly EventFeed[],
  ): Promise<TrainingRow[]> {
    const rows: {
      event_id: string;
      user_id: string;
      item_id: string;
      labels: Record<string, number>;
      weight: number | null;
      occurred_at: Date;
      context: FeatureMap | null;
    }[] = await db.query(
      `SELECT e.event_id, e.user_id, e.item_id, e.labels, e.weight, e.occurred_at, e.context FROM events e
       WHERE e.occurred_at >= $1 AND e.occurred_at < $2 ${sql.filter}
       ORDER BY ${sql.order}
       LIMIT $3`,
      parameters,
    );
    // Each user's and item's features are read once and shared by their rows (rebuildList copies before it writes):
    // joined per event, they were sent, parsed and held once per event, and 7,500 events of users with a 1 MB list
    // ran a worker out of memory.
    const users = await featuresOf(
      db,
      'user_features',
      rows.map((r) => r.user_id),
    );
    const items = await featuresOf(
      db,
      'item_features',
      rows.map((r) => r.item_id),
    );
    const training = rows.map((r) => ({
      eventId: r.event_id,
      userId: r.user_id,
      itemId: r.item_id,
      labels: r.labels,
      weight: r.weight,
      occurredAt: r.occurred_at,
      context: r.context,
      userFeatures: users.get(r.user_id) ?? null,
      itemFeatures: items.get(r.item_id) ?? null,
    }));
    for (const feed of feeds) await this.rebuildList(db, training, parameters[0] as Date, parameters[1] as Date, feed);
    return training;
  }

  /**
   * Sets each row's `feed` list to the user's last maxLength positive events strictly before the row's event. One
   * query reads the positives of the rows' users: those in [from, to), and before `from` each user's last maxLength
   * (one short range of events_user_occurred_at per user); then one pass over the rows in time order, a cursor per
   * user. `npm run bench:freshness -- --db …` measured this at 1.5× the plain read, where a subquery per row cost 14×.
   * A timestamp is compared in whole milliseconds, floored: a click within the row's millisecond is never before it.
   * A feed of an item feature reads the items' stored values (today's, as the rows' item features are), and skips
   * the events whose item has none, as the append did.
   */
  private async rebuildList(db: Queryable, rows: TrainingRow[], from: Date, to: Date, feed: EventFeed): Promise<void> {
    if (rows.length === 0) return;
    const users = [...new Set(rows.map((r) => r.userId))];
    // The feed as the row `f` FEED_VALUE_SQL reads.
    const positives: { user_id: string; value: string; at: string }[] = await db.query(
      `WITH f AS (SELECT $4::text AS task, $6::text AS item_feature)
       SELECT user_id, value, at FROM (
         SELECT u.user_id, h.value, h.occurred_at, h.event_id, floor(extract(epoch FROM h.occurred_at) * 1000)::float8 AS at
         FROM unnest($1::text[]) AS u(user_id) CROSS JOIN f
         CROSS JOIN LATERAL (
           SELECT v.value, p.occurred_at, p.event_id FROM events p ${FEED_VALUE_SQL}
           WHERE p.user_id = u.user_id AND p.occurred_at < $2 AND (p.labels ->> f.task)::float8 > 0 AND v.value IS NOT NULL
           ORDER BY p.occurred_at DESC, p.event_id DESC LIMIT $5) h
         UNION ALL
         SELECT p.user_id, v.value, p.occurred_at, p.event_id, floor(extract(epoch FROM p.occurred_at) * 1000)::float8
         FROM f CROSS JOIN events p ${FEED_VALUE_SQL}
         WHERE p.occurred_at >= $2 AND p.occurred_at < $3 AND (p.labels ->> f.task)::float8 > 0 AND p.user_id = ANY($1::text[])
           AND v.value IS NOT NULL
       ) positives
       ORDER BY user_id, occurred_at, event_id`,
      [users, from, to, feed.task, feed.maxLength, feed.itemFeature ?? null],
    );
    const byUser = new Map<string, { items: string[]; times: number[]; next: number }>();
    for (const p of positives) {
      let list = byUser.get(p.user_id);
      if (!list) byUser.set(p.user_id, (list = { items: [], times: [], next: 0 }));
      list.items.push(p.value);
      list.times.push(Number(p.at));
    }
    // In time order (a replay sample comes in hash order): each user's cursor only moves forward.
    const order = [...rows.keys()].sort((a, b) => rows[a].occurredAt.getTime() - rows[b].occurredAt.getTime());
    for (const i of order) {
      const row = rows[i];
      const list = byUser.get(row.userId);
      let history: string[] = [];
      if (list) {
        const at = row.occurredAt.getTime();
        while (list.next < list.times.length && list.times[list.next] < at) list.next++;
        history = list.items.slice(Math.max(0, list.next - feed.maxLength), list.next);
      }
      row.userFeatures = { ...row.userFeatures, [feed.feature]: history };
    }
  }
}

/** The stored features of the distinct `ids` of `table`, by id (those stored nowhere left out). */
async function featuresOf(
  db: Queryable,
  table: 'user_features' | 'item_features',
  ids: readonly string[],
): Promise<Map<string, FeatureMap>> {
  const rows: { entity_id: string; features: FeatureMap }[] =
    ids.length === 0
      ? []
      : await db.query(`SELECT entity_id, features FROM ${table} WHERE entity_id = ANY($1::text[])`, [
          [...new Set(ids)],
        ]);
  return new Map(rows.map((r) => [r.entity_id, r.features]));
}

/**
 * An event `e` stored after the snapshot bound to `parameter`: by a transaction that snapshot does not see (the first
 * condition lets events_ingest_xid find them among the recent ones).
 */
const storedAfter = (parameter: string): string =>
  `e.ingest_xid >= pg_snapshot_xmin(${parameter}::pg_snapshot) AND NOT pg_visible_in_snapshot(e.ingest_xid, ${parameter}::pg_snapshot)`;

/** An event's seeded ($4) hash, uniform in [0, 1): what a replay sample keeps and orders its events by. */
const SAMPLE_HASH = '(hashtextextended(e.event_id, $4) & 4294967295)::float8 / 4294967296';

/** A connection, a data source or a transaction's manager: what a read runs its queries on. */
type Queryable = Pick<EntityManager, 'query'>;

/** The reads of one snapshot (EventRepository.readInSnapshot). */
export interface SnapshotReads {
  /** The snapshot they see, as pg_snapshot text (`xmin:xmax:xip,…`). */
  snapshot: string;
  /** The window's rows (windowRows). */
  window(from: Date, to: Date, feeds: readonly EventFeed[]): Promise<TrainingRow[]>;
  /**
   * The events that occurred in [from, to) and that the snapshot `after` does not hold (stored after it was taken),
   * oldest first, lists as the window's; events stored before ingest_xid was recorded are in every snapshot.
   */
  late(after: string, from: Date, to: Date, feeds: readonly EventFeed[]): Promise<TrainingRow[]>;
  /** A seeded random draw of `count` of the window's rows (sampleRows); with `seen`, only of the events that snapshot holds. */
  sample(
    from: Date,
    to: Date,
    count: number,
    seed: number,
    feeds: readonly EventFeed[],
    seen?: string,
  ): Promise<TrainingRow[]>;
}

type StoredEvent = Pick<NewEvent, 'eventId' | 'userId' | 'itemId' | 'labels' | 'occurredAt'>;

/** The feeds of parameter $2 (feedsJson) as rows: feature, task, max_length, key (feedKey), item_feature. */
const FEEDS_SQL = `jsonb_to_recordset($2::jsonb) AS f(feature text, task text, max_length int, key text, item_feature text)`;

/**
 * What a feed `f`'s list holds of an event `p`, as `v.value`: the item's id, or the item's value of the feed's item
 * feature (null, nothing added, for an item stored without it). The item is looked up only for the latter: the
 * condition on the feed inside the lateral subquery is a one-time filter there (as a join condition it was checked
 * after the lookup, for every event scanned).
 */
const FEED_VALUE_SQL = `LEFT JOIN LATERAL (
    SELECT i.features ->> f.item_feature AS value FROM item_features i
    WHERE f.item_feature IS NOT NULL AND i.entity_id = p.item_id) iv ON true
  CROSS JOIN LATERAL (SELECT CASE WHEN f.item_feature IS NULL THEN p.item_id ELSE iv.value END AS value) v`;

function feedsJson(feeds: readonly EventFeed[]): string {
  return JSON.stringify(
    feeds.map((feed) => ({
      feature: feed.feature,
      task: feed.task,
      max_length: feed.maxLength,
      key: feedKey(feed),
      item_feature: feed.itemFeature ?? null,
    })),
  );
}

/** A feed as a backfill knows it: a list of another name, source or length is another backfill. */
export function feedKey({ feature, task, itemFeature, maxLength }: EventFeed): string {
  return JSON.stringify([feature, task, itemFeature ?? null, maxLength]);
}
