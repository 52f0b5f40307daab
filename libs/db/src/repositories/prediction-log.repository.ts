import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

import { ReadReplica } from '../read-replica';

export type PredictionRole = 'production' | 'canary' | 'shadow';

/** One served prediction: a (request, item, version) triple and the version's score for each task, by task name. */
export interface LoggedPrediction {
  loggedAt: Date;
  requestId: string;
  itemId: string;
  userId: string;
  versionId: number;
  role: PredictionRole;
  scores: Record<string, number>;
}

/** A logged prediction joined with the labels its impression came back with (several events' labels merged). */
export interface LabelledPrediction {
  requestId: string;
  itemId: string;
  userId: string;
  role: PredictionRole;
  scores: Record<string, number>;
  labels: Record<string, number>;
}

/** Partitions are named by their UTC day, e.g. prediction_log_20261201 for [2026-12-01, 2026-12-02). */
const PARTITION_PREFIX = 'prediction_log_';
/** Serialises partition DDL across processes: two concurrent CREATE TABLE … PARTITION OF of one day would collide. */
const PARTITION_LOCK_KEY = 0x706c6f67;
const DAY_MS = 86_400_000;

/** The served-prediction log: a table partitioned by day, written in batches, joined with events for online metrics. */
@Injectable()
export class PredictionLogRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly reads: ReadReplica,
  ) {}

  /** One statement per batch (the rows travel as one JSON parameter, like events). */
  async insert(rows: LoggedPrediction[]): Promise<void> {
    if (rows.length === 0) return;
    await this.dataSource.query(
      `INSERT INTO prediction_log (logged_at, request_id, item_id, user_id, version_id, role, scores)
       SELECT logged_at, request_id, item_id, user_id, version_id, role, scores
       FROM jsonb_to_recordset($1::jsonb) AS r(
         logged_at timestamptz, request_id text, item_id text, user_id text, version_id int, role text, scores jsonb)`,
      [
        JSON.stringify(
          rows.map((r) => ({
            logged_at: r.loggedAt,
            request_id: r.requestId,
            item_id: r.itemId,
            user_id: r.userId,
            version_id: r.versionId,
            role: r.role,
            scores: r.scores,
          })),
        ),
      ],
    );
  }

  /**
   * Creates the day partitions from `from`'s day through `daysAhead` days later and drops those whose day ended
   * before `dropBefore`; returns what it did. Idempotent, and serialised across processes by an advisory lock.
   */
  maintainPartitions(
    from: Date,
    daysAhead: number,
    dropBefore: Date,
  ): Promise<{ created: string[]; dropped: string[] }> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK_KEY]);
      const existing = new Set(
        (
          (await manager.query(
            `SELECT c.relname AS name FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
           WHERE p.relname = 'prediction_log'`,
          )) as { name: string }[]
        ).map((r) => r.name),
      );
      const created: string[] = [];
      const first = startOfUtcDay(from);
      for (let d = 0; d <= daysAhead; d++) {
        const start = new Date(first.getTime() + d * DAY_MS);
        const name = partitionName(start);
        if (existing.has(name)) continue;
        const end = new Date(start.getTime() + DAY_MS);
        // Names and bounds come from dates formatted here, never from input.
        await manager.query(
          `CREATE TABLE ${name} PARTITION OF prediction_log FOR VALUES FROM ('${start.toISOString()}') TO ('${end.toISOString()}')`,
        );
        created.push(name);
      }
      const limit = partitionName(startOfUtcDay(dropBefore));
      const dropped = [...existing].filter((name) => /^prediction_log_\d{8}$/.test(name) && name < limit).sort();
      for (const name of dropped) await manager.query(`DROP TABLE ${name}`);
      return { created, dropped };
    });
  }

  /**
   * The predictions version `versionId` made at or after `since`, each with the labels of the events that came back
   * for its (request, item); predictions that never got an event are left out. `limit` bounds the memory of a
   * metrics pass: the newest rows are kept. A heavy read that tolerates lag: on the read replica when there is one.
   */
  async labelled(versionId: number, since: Date, limit: number): Promise<LabelledPrediction[]> {
    const rows: {
      request_id: string;
      item_id: string;
      user_id: string;
      role: PredictionRole;
      scores: Record<string, number>;
      labels: Record<string, number>;
    }[] = await this.reads.read((db) =>
      db.query(
        `SELECT p.request_id, p.item_id, p.user_id, p.role, p.scores, l.labels
       FROM prediction_log p
       CROSS JOIN LATERAL (
         SELECT jsonb_object_agg(k, v) AS labels
         FROM (SELECT k, max(v::float8) AS v
               FROM events e, jsonb_each_text(e.labels) AS t(k, v)
               WHERE e.request_id = p.request_id AND e.item_id = p.item_id
               GROUP BY k) merged
       ) l
       WHERE p.version_id = $1 AND p.logged_at >= $2 AND l.labels IS NOT NULL
       ORDER BY p.logged_at DESC
       LIMIT $3`,
        [versionId, since, limit],
      ),
    );
    return rows.map((r) => ({
      requestId: r.request_id,
      itemId: r.item_id,
      userId: r.user_id,
      role: r.role,
      scores: r.scores,
      labels: r.labels,
    }));
  }
}

function startOfUtcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}

function partitionName(day: Date): string {
  return PARTITION_PREFIX + day.toISOString().slice(0, 10).replaceAll('-', '');
}
