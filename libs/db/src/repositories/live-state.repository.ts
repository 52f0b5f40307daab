import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';

import { ReadReplica } from '../read-replica';
import { servedKey, type ServedKey } from './prediction-log.repository';

/** A logged prediction an event came back for, with the labels of all its events merged (max per task). */
export interface LabelledPrediction {
  requestId: string;
  itemId: string;
  versionId: number;
  userId: string;
  loggedAt: Date;
  /** In the version's task order. */
  scores: readonly number[];
  labels: Record<string, number>;
}

/** One labelled prediction as a test of one task reads it. */
export interface TaskObservation {
  requestId: string;
  itemId: string;
  userId: string;
  score: number;
  label: number;
}

export type Granularity = 'minute' | 'hour' | 'day';

/** One stored aggregate (see TaskAggregate in @app/mmoe): a version's task over one period, encoded. */
export interface StoredAggregate {
  versionId: number;
  task: string;
  granularity: Granularity;
  periodStart: Date;
  state: Buffer;
}

/**
 * The live join's two watermarks: the first joins each event LIVE_AGGREGATION_LAG_SECONDS after it is stored; the late
 * one joins it again LIVE_LATE_JOIN_SECONDS after, for the predictions that reached the log in between.
 */
export type JoinWatermark = 'first' | 'late';

/** Each watermark's columns (SQL written here, never input). */
const WATERMARK_COLUMNS: Record<JoinWatermark, { xid: string; event: string }> = {
  first: { xid: 'ingest_xid', event: 'event_id' },
  late: { xid: 'late_ingest_xid', event: 'late_event_id' },
};

/** An event the join has not read yet (events are read in the order they were stored, then by id). */
export interface NewEventRef {
  eventId: string;
  requestId: string | null;
  userId: string;
  itemId: string;
}

/** The comparison the rollout policy runs: canary and production since the canary's `canary` rollout event. */
export interface CanaryEpoch {
  canaryEventId: number;
  canaryVersionId: number;
  productionVersionId: number;
  since: Date;
}

/** Serialises the live-metrics join across processes (one pass at a time, in one transaction). */
const AGGREGATION_LOCK_KEY = 0x6c697665;

/**
 * The state online metrics are read from: the labelled predictions (the log joined with the events, once), additive
 * aggregates of them per version, task and period, and per canary epoch for the rollout policy. Written only by
 * the live-metrics join, in one transaction per pass; read by the metrics and the policy.
 */
@Injectable()
export class LiveStateRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly reads: ReadReplica,
  ) {}

  /**
   * Runs `pass` in a transaction holding the cluster-wide join lock; undefined, without running it, when another
   * process holds the lock (its pass will do the work).
   */
  async exclusively<T>(pass: (tx: LiveStateTransaction) => Promise<T>): Promise<T | undefined> {
    return this.dataSource.transaction(async (manager) => {
      const [{ locked }]: { locked: boolean }[] = await manager.query(
        'SELECT pg_try_advisory_xact_lock($1) AS locked',
        [AGGREGATION_LOCK_KEY],
      );
      return locked ? pass(new LiveStateTransaction(manager)) : undefined;
    });
  }

  /** Aggregates of a version at one granularity from `from` on (every task); on the read replica when there is one. */
  async aggregates(versionId: number, granularity: Granularity, from: Date): Promise<StoredAggregate[]> {
    const rows: { task: string; period_start: Date; state: Buffer }[] = await this.reads.read((db) =>
      db.query(
        `SELECT task, period_start, state FROM live_aggregates
         WHERE version_id = $1 AND granularity = $2 AND period_start >= $3`,
        [versionId, granularity, from],
      ),
    );
    return rows.map((r) => ({ versionId, task: r.task, granularity, periodStart: r.period_start, state: r.state }));
  }

  /**
   * The given tasks' scores and labels of a version's newest labelled predictions since `since` (at most `limit`),
   * per task: only the columns a test needs, since reading whole rows (their jsonb and arrays) costs several times
   * more. `tasks` name each task and its position in the version's scores. On the read replica when there is one.
   */
  async labelledTasks(
    versionId: number,
    tasks: readonly { name: string; index: number }[],
    since: Date,
    limit: number,
  ): Promise<TaskObservation[][]> {
    const columns = tasks.map(
      (_, k) => `scores[$${4 + 2 * k}::int + 1] AS s${k}, (labels ->> $${5 + 2 * k})::float8 AS y${k}`,
    );
    const rows: Record<string, string | number | null>[] = await this.reads.read((db) =>
      db.query(
        `SELECT request_id, item_id, user_id, ${columns.join(', ')} FROM live_labelled
         WHERE version_id = $1 AND logged_at >= $2 ORDER BY logged_at DESC LIMIT $3`,
        [versionId, since, limit, ...tasks.flatMap((t) => [t.index, t.name])],
      ),
    );
    return tasks.map((_, k) =>
      rows.flatMap((r) =>
        r[`s${k}`] === null || r[`y${k}`] === null
          ? []
          : [
              {
                requestId: r.request_id as string,
                itemId: r.item_id as string,
                userId: r.user_id as string,
                score: r[`s${k}`] as number,
                label: r[`y${k}`] as number,
              },
            ],
      ),
    );
  }

  /** The epoch's aggregates (by version and task) and its users per version. */
  /**
   * Both sides' state of a canary comparison (per version and task, and their numbers of users), or undefined while
   * the live join has not started it: the epoch and its aggregates in one query, its users in a second beside it.
   */
  async canaryState(
    canaryEventId: number,
  ): Promise<
    { aggregates: { versionId: number; task: string; state: Buffer }[]; users: Map<number, number> } | undefined
  > {
    const [aggregates, users]: [
      { version_id: number | null; task: string | null; state: Buffer | null }[],
      { version_id: number; users: number }[],
    ] = await Promise.all([
      this.dataSource.query(
        `SELECT a.version_id, a.task, a.state FROM live_canary_epochs e
         LEFT JOIN live_canary_aggregates a USING (canary_event_id) WHERE e.canary_event_id = $1`,
        [canaryEventId],
      ),
      this.dataSource.query(
        `SELECT version_id, count(*)::int AS users FROM live_canary_users WHERE canary_event_id = $1 GROUP BY version_id`,
        [canaryEventId],
      ),
    ]);
    if (aggregates.length === 0) return undefined;
    return {
      aggregates: aggregates
        .filter((a) => a.state !== null)
        .map((a) => ({ versionId: a.version_id!, task: a.task!, state: a.state! })),
      users: new Map(users.map((u) => [u.version_id, u.users])),
    };
  }

  /** Drops aggregates of `granularity` whose period started before `before`, and labelled predictions logged before `labelledBefore`. */
  async prune(before: Record<Granularity, Date>, labelledBefore: Date): Promise<void> {
    for (const [granularity, date] of Object.entries(before))
      await this.dataSource.query(`DELETE FROM live_aggregates WHERE granularity = $1 AND period_start < $2`, [
        granularity,
        date,
      ]);
    await this.dataSource.query(`DELETE FROM live_labelled WHERE logged_at < $1`, [labelledBefore]);
  }
}

interface LabelledRow {
  request_id: string;
  item_id: string;
  version_id: number;
  user_id: string;
  logged_at: Date;
  scores: number[];
  labels: Record<string, number>;
}

function toLabelled(r: LabelledRow): LabelledPrediction {
  return {
    requestId: r.request_id,
    itemId: r.item_id,
    versionId: r.version_id,
    userId: r.user_id,
    loggedAt: r.logged_at,
    scores: r.scores,
    labels: r.labels,
  };
}

/** The reads and writes of one pass of the live-metrics join, inside its transaction. */
export class LiveStateTransaction {
  constructor(readonly manager: EntityManager) {}

  /**
   * Events past the watermark, in the order of the transactions that stored them (ingest_xid, then event_id), oldest
   * first: only those below every transaction still running (pg_snapshot_xmin), so that none can still commit behind
   * the watermark, however long it waited; and of those, the run stored at least `lagSeconds` ago, so that the
   * predictions they label have been written (it stops at the first one too recent, which a later pass reads).
   * Events stored before ingest_xid existed (NULL) are behind every watermark.
   */
  async eventsAfterWatermark(lagSeconds: number, limit: number, watermark: JoinWatermark): Promise<NewEventRef[]> {
    const w = WATERMARK_COLUMNS[watermark];
    const rows: { event_id: string; request_id: string | null; user_id: string; item_id: string; ready: boolean }[] =
      await this.manager.query(
        `SELECT e.event_id, e.request_id, e.user_id, e.item_id, e.created_at < now() - make_interval(secs => $1) AS ready
         FROM events e, live_watermark w
         WHERE (e.ingest_xid, e.event_id) > (w.${w.xid}, w.${w.event})
           AND e.ingest_xid < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY e.ingest_xid, e.event_id LIMIT $2`,
        [lagSeconds, limit],
      );
    const ready = rows.findIndex((r) => !r.ready);
    return (ready < 0 ? rows : rows.slice(0, ready)).map((r) => ({
      eventId: r.event_id,
      requestId: r.request_id,
      userId: r.user_id,
      itemId: r.item_id,
    }));
  }

  /** Moves the watermark to the event `eventId` (the last one a pass read). */
  async advanceWatermark(eventId: string, watermark: JoinWatermark): Promise<void> {
    const w = WATERMARK_COLUMNS[watermark];
    await this.manager.query(
      `UPDATE live_watermark w SET ${w.xid} = e.ingest_xid, ${w.event} = e.event_id FROM events e WHERE e.event_id = $1`,
      [eventId],
    );
  }

  /** Per served key, the labels of all its events merged: the largest value per task. */
  async mergedLabels(keys: readonly ServedKey[]): Promise<Map<string, Record<string, number>>> {
    if (keys.length === 0) return new Map();
    const rows: { request_id: string; user_id: string; item_id: string; labels: Record<string, number> }[] =
      await this.manager.query(
        `SELECT request_id, user_id, item_id, jsonb_object_agg(task, value) AS labels
         FROM (SELECT e.request_id, e.user_id, e.item_id, t.task, max(t.value::float8) AS value
               FROM unnest($1::text[], $2::text[], $3::text[]) AS k(request_id, user_id, item_id)
               JOIN events e ON e.request_id = k.request_id AND e.item_id = k.item_id AND e.user_id = k.user_id,
               jsonb_each_text(e.labels) AS t(task, value)
               GROUP BY e.request_id, e.user_id, e.item_id, t.task) merged
         GROUP BY request_id, user_id, item_id`,
        [keys.map((k) => k.requestId), keys.map((k) => k.userId), keys.map((k) => k.itemId)],
      );
    return new Map(
      rows.map((r) => [servedKey({ requestId: r.request_id, userId: r.user_id, itemId: r.item_id }), r.labels]),
    );
  }

  /** Every labelled prediction of these requests (all their items, every version). */
  async labelledOfRequests(requestIds: readonly string[]): Promise<LabelledPrediction[]> {
    if (requestIds.length === 0) return [];
    const rows: LabelledRow[] = await this.manager.query(
      `SELECT request_id, item_id, version_id, user_id, logged_at, scores, labels FROM live_labelled
       WHERE request_id = ANY($1::text[])`,
      [requestIds],
    );
    return rows.map(toLabelled);
  }

  /** A version's labelled predictions logged since `since` (to start a canary epoch from). */
  async labelledSince(versionId: number, since: Date): Promise<LabelledPrediction[]> {
    const rows: LabelledRow[] = await this.manager.query(
      `SELECT request_id, item_id, version_id, user_id, logged_at, scores, labels FROM live_labelled
       WHERE version_id = $1 AND logged_at >= $2`,
      [versionId, since],
    );
    return rows.map(toLabelled);
  }

  async saveLabelled(rows: readonly LabelledPrediction[]): Promise<void> {
    if (rows.length === 0) return;
    await this.manager.query(
      `INSERT INTO live_labelled (request_id, item_id, version_id, user_id, logged_at, scores, labels)
       SELECT r.request_id, r.item_id, r.version_id, r.user_id, r.logged_at, r.scores, r.labels
       FROM jsonb_to_recordset($1::jsonb) AS r(request_id text, item_id text, version_id int, user_id text,
         logged_at timestamptz, scores real[], labels jsonb)
       ON CONFLICT (request_id, user_id, item_id, version_id) DO UPDATE SET labels = excluded.labels`,
      [
        JSON.stringify(
          rows.map((r) => ({
            request_id: r.requestId,
            item_id: r.itemId,
            version_id: r.versionId,
            user_id: r.userId,
            logged_at: r.loggedAt,
            scores: r.scores.map((s) => (Number.isFinite(s) ? s : null)),
            labels: r.labels,
          })),
        ),
      ],
    );
  }

  /** The stored aggregates of these keys, locked until the pass commits. */
  async lockAggregates(keys: readonly Omit<StoredAggregate, 'state'>[]): Promise<StoredAggregate[]> {
    if (keys.length === 0) return [];
    const rows: { version_id: number; task: string; granularity: Granularity; period_start: Date; state: Buffer }[] =
      await this.manager.query(
        `SELECT a.version_id, a.task, a.granularity, a.period_start, a.state
         FROM unnest($1::int[], $2::text[], $3::text[], $4::timestamptz[]) AS k(version_id, task, granularity, period_start)
         JOIN live_aggregates a USING (version_id, task, granularity, period_start)
         FOR UPDATE OF a`,
        [
          keys.map((k) => k.versionId),
          keys.map((k) => k.task),
          keys.map((k) => k.granularity),
          keys.map((k) => k.periodStart),
        ],
      );
    return rows.map((r) => ({
      versionId: r.version_id,
      task: r.task,
      granularity: r.granularity,
      periodStart: r.period_start,
      state: r.state,
    }));
  }

  async saveAggregates(aggregates: readonly StoredAggregate[]): Promise<void> {
    for (const a of aggregates)
      await this.manager.query(
        `INSERT INTO live_aggregates (version_id, task, granularity, period_start, state) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (version_id, granularity, period_start, task) DO UPDATE SET state = excluded.state`,
        [a.versionId, a.task, a.granularity, a.periodStart, a.state],
      );
  }

  /** The epoch's row, created (true) if it did not exist; every other epoch is dropped with its state. */
  async enterCanaryEpoch(epoch: CanaryEpoch): Promise<boolean> {
    await this.manager.query(`DELETE FROM live_canary_epochs WHERE canary_event_id <> $1`, [epoch.canaryEventId]);
    const created: unknown[] = await this.manager.query(
      `INSERT INTO live_canary_epochs (canary_event_id, canary_version_id, production_version_id, since)
       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1`,
      [epoch.canaryEventId, epoch.canaryVersionId, epoch.productionVersionId, epoch.since],
    );
    return created.length > 0;
  }

  /** Drops every canary epoch (there is no canary, or no production to compare it with). */
  async leaveCanaryEpochs(): Promise<void> {
    await this.manager.query(`DELETE FROM live_canary_epochs`);
  }

  async lockCanaryAggregates(canaryEventId: number): Promise<{ versionId: number; task: string; state: Buffer }[]> {
    const rows: { version_id: number; task: string; state: Buffer }[] = await this.manager.query(
      `SELECT version_id, task, state FROM live_canary_aggregates WHERE canary_event_id = $1 FOR UPDATE`,
      [canaryEventId],
    );
    return rows.map((r) => ({ versionId: r.version_id, task: r.task, state: r.state }));
  }

  async saveCanaryAggregates(
    canaryEventId: number,
    aggregates: readonly { versionId: number; task: string; state: Buffer }[],
  ): Promise<void> {
    for (const a of aggregates)
      await this.manager.query(
        `INSERT INTO live_canary_aggregates (canary_event_id, version_id, task, state) VALUES ($1, $2, $3, $4)
         ON CONFLICT (canary_event_id, version_id, task) DO UPDATE SET state = excluded.state`,
        [canaryEventId, a.versionId, a.task, a.state],
      );
  }

  async addCanaryUsers(canaryEventId: number, users: readonly { versionId: number; userId: string }[]): Promise<void> {
    if (users.length === 0) return;
    await this.manager.query(
      `INSERT INTO live_canary_users (canary_event_id, version_id, user_id)
       SELECT $1, version_id, user_id FROM unnest($2::int[], $3::text[]) AS u(version_id, user_id)
       ON CONFLICT DO NOTHING`,
      [canaryEventId, users.map((u) => u.versionId), users.map((u) => u.userId)],
    );
  }
}
