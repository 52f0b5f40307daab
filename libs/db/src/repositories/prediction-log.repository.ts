import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DataSource } from 'typeorm';

import { ByteBuffer } from '@app/common';

export type PredictionRole = 'production' | 'canary' | 'shadow';

/** One served prediction: a (request, item, version) triple and the version's score for each task, in its spec's order. */
export interface LoggedPrediction {
  loggedAt: Date;
  requestId: string;
  itemId: string;
  userId: string;
  versionId: number;
  role: PredictionRole;
  scores: readonly number[];
}

/** One served response of one version by column: a row per item, its score for task t at scores[t][i]. */
export interface PredictionColumns {
  loggedAt: Date;
  requestId: string;
  userId: string;
  versionId: number;
  role: PredictionRole;
  itemIds: readonly string[];
  scores: readonly ArrayLike<number>[];
}

/**
 * Rows as COPY takes them (insertEncoded), written into one reused buffer off V8's heap: an object, a score array and
 * a string per row were ~320 KB of garbage per logged 500-item response, in the API's heap (its scavenges are part
 * of the scoring tail). The scores too are written as digits, no string each (ByteBuffer.float32).
 */
export class PredictionCopyText extends ByteBuffer {
  /** Appends a line per item (COPY's text format: tab-separated, scores as a real[] literal). */
  append(p: PredictionColumns): void {
    const head = `${p.loggedAt.toISOString()}\t${copyText(p.requestId)}\t`;
    const middle = `\t${copyText(p.userId)}\t${p.versionId}\t${p.role}\t{`;
    for (let i = 0; i < p.itemIds.length; i++) {
      const itemId = copyText(p.itemIds[i]);
      // UTF-8 takes at most 3 bytes per UTF-16 unit; a number's shortest form at most 25 characters.
      this.reserve(3 * (head.length + itemId.length + middle.length) + 26 * p.scores.length + 2);
      this.utf8(head);
      this.utf8(itemId);
      this.utf8(middle);
      for (let t = 0; t < p.scores.length; t++) {
        if (t > 0) this.byte(0x2c); // ,
        this.float32(Math.fround(p.scores[t][i])); // stored as real: a float32's digits are all Postgres keeps
      }
      this.byte(0x7d); // }
      this.byte(0x0a); // \n
    }
  }
}

/**
 * A served (request, user, item), the key events come back with. The user is part of it because a request id may be
 * the caller's own `x-request-id`, which a client can reuse across users: an event joins its user's predictions only.
 */
export interface ServedKey {
  requestId: string;
  userId: string;
  itemId: string;
}

/** One string per served key, for maps. */
export function servedKey(key: ServedKey): string {
  return `${key.requestId}\u0000${key.userId}\u0000${key.itemId}`;
}

/** Partitions are named by their UTC day, e.g. prediction_log_20261201 for [2026-12-01, 2026-12-02). */
const PARTITION_PREFIX = 'prediction_log_';
/** Serialises partition DDL across processes: two concurrent CREATE TABLE … PARTITION OF of one day would collide. */
const PARTITION_LOCK_KEY = 0x706c6f67;
const DAY_MS = 86_400_000;

/**
 * The served-prediction log: a table partitioned by day, written in batches by COPY, read by (request, user, item) when
 * events come back for them (live metrics, see LiveStateRepository).
 */
@Injectable()
export class PredictionLogRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Rows encoded by PredictionCopyText, in one COPY: bench:live measured it at about a third of Postgres's CPU per
   * row of the INSERT … SELECT FROM jsonb_to_recordset it replaces (no statement to parse and plan, no JSON to take
   * apart), scores as real[].
   */
  async insertEncoded(rows: Uint8Array): Promise<void> {
    if (rows.length === 0) return;
    const runner = this.dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as PoolClient;
      await pipeline(
        Readable.from([rows]),
        client.query(
          copyFrom(
            'COPY prediction_log (logged_at, request_id, item_id, user_id, version_id, role, scores) FROM STDIN',
          ),
        ),
      );
    } finally {
      await runner.release();
    }
  }

  /** The logged predictions of these served keys, every version's (a shadow's beside production's). */
  async findServed(keys: readonly ServedKey[], manager = this.dataSource.manager): Promise<LoggedPrediction[]> {
    if (keys.length === 0) return [];
    const rows: {
      logged_at: Date;
      request_id: string;
      item_id: string;
      user_id: string;
      version_id: number;
      role: PredictionRole;
      scores: number[];
    }[] = await manager.query(
      `SELECT p.logged_at, p.request_id, p.item_id, p.user_id, p.version_id, p.role, p.scores
       FROM unnest($1::text[], $2::text[], $3::text[]) AS k(request_id, user_id, item_id)
       JOIN prediction_log p ON p.request_id = k.request_id AND p.item_id = k.item_id AND p.user_id = k.user_id`,
      [keys.map((k) => k.requestId), keys.map((k) => k.userId), keys.map((k) => k.itemId)],
    );
    return rows.map((r) => ({
      loggedAt: r.logged_at,
      requestId: r.request_id,
      itemId: r.item_id,
      userId: r.user_id,
      versionId: r.version_id,
      role: r.role,
      scores: r.scores,
    }));
  }

  /**
   * Creates the day partitions from `from`'s day through `daysAhead` days later and drops those whose day ended
   * before `dropBefore`; returns what it did, and from when the log still holds every prediction (`keptFrom`, the
   * start of `dropBefore`'s day). Idempotent, and serialised across processes by an advisory lock.
   */
  maintainPartitions(
    from: Date,
    daysAhead: number,
    dropBefore: Date,
  ): Promise<{ created: string[]; dropped: string[]; keptFrom: Date }> {
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
      const keptFrom = startOfUtcDay(dropBefore);
      const limit = partitionName(keptFrom);
      const dropped = [...existing].filter((name) => /^prediction_log_\d{8}$/.test(name) && name < limit).sort();
      for (const name of dropped) await manager.query(`DROP TABLE ${name}`);
      return { created, dropped, keptFrom };
    });
  }
}

function startOfUtcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}

function partitionName(day: Date): string {
  return PARTITION_PREFIX + day.toISOString().slice(0, 10).replaceAll('-', '');
}

/** COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped with a backslash. */
function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!)
    : value;
}
