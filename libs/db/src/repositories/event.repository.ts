import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';

import { FeatureRepository, type FeatureMap, type ListAppend } from './feature.repository';

/**
 * A user-side list fed by events (a spec's `fromEvents`, see eventFeeds in @app/mmoe): each stored event whose label
 * for `task` is positive appends its item id to the user's `feature`, which keeps its last `maxLength` values.
 */
export interface EventFeed {
  feature: string;
  task: string;
  maxLength: number;
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
  userFeatures: FeatureMap | null;
  itemFeatures: FeatureMap | null;
}

/** Logged impressions and their labels: the training data of the next model version. */
@Injectable()
export class EventRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly features: FeatureRepository,
  ) {}

  /**
   * Stores the events whose id is new and returns how many that was; an id already stored (or repeated in the batch)
   * is skipped, which makes re-posting a batch harmless. The new events feed the users' lists of `feeds` (in order of
   * occurrence) in the same transaction: the batch and its appends are stored whole or not at all, and an event is
   * appended once however often it is posted. Rows are inserted in id order so that concurrent overlapping batches
   * cannot deadlock.
   */
  insertNew(events: NewEvent[], feeds: readonly EventFeed[] = []): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const stored = await this.insert(manager, events);
      if (feeds.length > 0)
        await this.features.appendToUserLists(
          manager,
          listAppends(stored, feeds),
          Object.fromEntries(feeds.map((f) => [f.feature, f.maxLength])),
        );
      return stored.length;
    });
  }

  private async insert(manager: EntityManager, events: NewEvent[]): Promise<StoredEvent[]> {
    const rows = events.map((e) => ({
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

  /** Those of the given model version ids that name no stored version. */
  async unknownModelVersions(ids: number[]): Promise<number[]> {
    const rows: { id: number }[] = await this.dataSource.query(
      `SELECT w.id FROM unnest($1::int[]) AS w(id) WHERE NOT EXISTS (SELECT 1 FROM model_versions v WHERE v.id = w.id)`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  /**
   * `count` events drawn at random from [from, to) (fewer if there are fewer), reproducibly for a given seed: ordered
   * by a hash of the seed and the event id, so that a retried job replays the same events. Lists as readTrainingRows.
   */
  sampleTrainingRows(
    from: Date,
    to: Date,
    count: number,
    seed: number,
    feeds: readonly EventFeed[] = [],
  ): Promise<TrainingRow[]> {
    return this.trainingRows('md5($4::text || e.event_id)', [from, to, count, String(seed)], feeds);
  }

  /**
   * The events that occurred in [from, to), oldest first, joined with the user's and the item's features. The stored
   * features are the current ones (the store keeps no history), except the event-fed lists of `feeds`: each row's is
   * rebuilt as it was when the event occurred, from the user's positive events strictly before it (its last
   * maxLength, most recent last), so that a row never holds its own label nor any later one.
   */
  readTrainingRows(from: Date, to: Date, feeds: readonly EventFeed[] = [], limit?: number): Promise<TrainingRow[]> {
    return this.trainingRows('e.occurred_at, e.event_id', [from, to, limit ?? null], feeds);
  }

  /** `order` is SQL written here, never input; the feeds' names, tasks and lengths travel as parameters. */
  private async trainingRows(
    order: string,
    parameters: unknown[],
    feeds: readonly EventFeed[],
  ): Promise<TrainingRow[]> {
    const at = (k: number, field: number) => `$${parameters.length + 3 * k + field}`;
    // Per feed, one index range of the user's events before this one (events_user_occurred_at), newest first.
    const lists = feeds.map(
      (_, k) => `LEFT JOIN LATERAL (
         SELECT coalesce(jsonb_agg(h.item_id ORDER BY h.occurred_at, h.event_id), '[]'::jsonb) AS list
         FROM (SELECT p.item_id, p.occurred_at, p.event_id FROM events p
               WHERE p.user_id = e.user_id AND p.occurred_at < e.occurred_at AND (p.labels ->> ${at(k, 2)})::float8 > 0
               ORDER BY p.occurred_at DESC, p.event_id DESC
               LIMIT ${at(k, 3)}::int) h) f${k} ON true`,
    );
    const fed = feeds.length
      ? `jsonb_build_object(${feeds.map((_, k) => `${at(k, 1)}::text, f${k}.list`).join(', ')})`
      : 'NULL::jsonb';
    const rows: {
      event_id: string;
      user_id: string;
      item_id: string;
      labels: Record<string, number>;
      weight: number | null;
      occurred_at: Date;
      user_features: FeatureMap | null;
      item_features: FeatureMap | null;
      fed: FeatureMap | null;
    }[] = await this.dataSource.query(
      `SELECT e.event_id, e.user_id, e.item_id, e.labels, e.weight, e.occurred_at, u.features AS user_features,
         i.features AS item_features, ${fed} AS fed
       FROM events e
       LEFT JOIN user_features u ON u.entity_id = e.user_id
       LEFT JOIN item_features i ON i.entity_id = e.item_id
       ${lists.join('\n')}
       WHERE e.occurred_at >= $1 AND e.occurred_at < $2
       ORDER BY ${order}
       LIMIT $3`,
      [...parameters, ...feeds.flatMap((f) => [f.feature, f.task, f.maxLength])],
    );
    return rows.map((r) => ({
      eventId: r.event_id,
      userId: r.user_id,
      itemId: r.item_id,
      labels: r.labels,
      weight: r.weight,
      occurredAt: r.occurred_at,
      userFeatures: r.fed ? { ...r.user_features, ...r.fed } : r.user_features,
      itemFeatures: r.item_features,
    }));
  }
}

type StoredEvent = Pick<NewEvent, 'eventId' | 'userId' | 'itemId' | 'labels' | 'occurredAt'>;

/** Per user, the items of its positive events for each feed, in order of occurrence (then id), the last maxLength. */
export function listAppends(events: readonly StoredEvent[], feeds: readonly EventFeed[]): ListAppend[] {
  const ordered = [...events].sort(
    (a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || (a.eventId < b.eventId ? -1 : 1),
  );
  const byUser = new Map<string, Record<string, string[]>>();
  for (const event of ordered) {
    for (const { feature, task } of feeds) {
      if (!((event.labels[task] ?? 0) > 0)) continue;
      let lists = byUser.get(event.userId);
      if (!lists) byUser.set(event.userId, (lists = {}));
      (lists[feature] ??= []).push(event.itemId);
    }
  }
  const bound = new Map(feeds.map((f) => [f.feature, f.maxLength]));
  return [...byUser].map(([id, lists]) => ({
    id,
    lists: Object.fromEntries(
      Object.entries(lists).map(([feature, items]) => [feature, items.slice(-bound.get(feature)!)]),
    ),
  }));
}
