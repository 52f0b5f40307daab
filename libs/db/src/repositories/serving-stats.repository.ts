import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';

/** Requests one process served with one model in one minute: counts, and its latency histogram's bucket counts. */
export interface ServingCounts {
  versionId: number;
  role: 'production' | 'canary';
  minute: Date;
  requests: number;
  errors: number;
  /** Requests per latency bucket (not cumulative), in the order of the histogram's bounds, +Inf last. */
  latency: readonly number[];
}

/**
 * Serving counts per version, role and minute, added to by every API process: the rollout policy's check, in
 * whichever process runs it, sees the requests of all of them.
 */
@Injectable()
export class ServingStatsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Adds the counts, all or none: the publisher writes the same deltas again after a failure, which would count the
   * rows of a half-committed write twice. Rows are upserted in key order so that two processes adding to the same
   * minute take their row locks in one order (no deadlock). Counts of a version that no longer exists are dropped.
   */
  async add(rows: readonly ServingCounts[]): Promise<void> {
    const ordered = [...rows].sort(
      (a, b) => a.versionId - b.versionId || a.role.localeCompare(b.role) || a.minute.getTime() - b.minute.getTime(),
    );
    await this.dataSource.transaction(async (manager) => {
      for (const r of ordered) await this.upsert(manager, r);
    });
  }

  private upsert(manager: EntityManager, r: ServingCounts): Promise<unknown> {
    return manager.query(
      `INSERT INTO serving_stats AS s (version_id, role, minute, requests, errors, latency)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM model_versions WHERE id = $1)
         ON CONFLICT (version_id, role, minute) DO UPDATE SET
           requests = s.requests + excluded.requests,
           errors = s.errors + excluded.errors,
           latency = (SELECT array_agg(a + b ORDER BY i) FROM unnest(s.latency, excluded.latency) WITH ORDINALITY AS l(a, b, i))`,
      [r.versionId, r.role, r.minute, r.requests, r.errors, r.latency],
    );
  }

  /** The version's counts in `role` from the minute of `since` on, summed; undefined when it served nothing. */
  async since(
    versionId: number,
    role: ServingCounts['role'],
    since: Date,
  ): Promise<Pick<ServingCounts, 'requests' | 'errors' | 'latency'> | undefined> {
    const rows: { requests: string; errors: string; latency: string[] }[] = await this.dataSource.query(
      `SELECT requests, errors, latency FROM serving_stats
       WHERE version_id = $1 AND role = $2 AND minute >= date_trunc('minute', $3::timestamptz)`,
      [versionId, role, since],
    );
    if (rows.length === 0) return undefined;
    const latency = new Array<number>(rows[0].latency.length).fill(0);
    let requests = 0;
    let errors = 0;
    for (const r of rows) {
      requests += Number(r.requests);
      errors += Number(r.errors);
      r.latency.forEach((n, i) => (latency[i] += Number(n)));
    }
    return { requests, errors, latency };
  }

  async prune(before: Date): Promise<void> {
    await this.dataSource.query(`DELETE FROM serving_stats WHERE minute < $1`, [before]);
  }
}
