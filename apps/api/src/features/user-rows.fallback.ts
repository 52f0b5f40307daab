import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Counter } from 'prom-client';

import { APP_CONFIG, type AppConfig } from '@app/config';
import type { FeatureMap } from '@app/db';

import { MetricsService } from '../platform/metrics.service';
import { FeatureChangeRepository, type FeatureChangeNotice } from './feature-change.repository';

/**
 * The features this process last read of each user it scored (per feature schema; null: stored nowhere), in a
 * bounded LRU, for one use only: scoring those users while neither Redis nor Postgres can answer for them (Redis
 * restarted empty and Postgres down). The normal path never reads it. A write of a user's features drops the user
 * here, in every process (the `features:changed` notice), as it does the encoded items. Notices lost while the
 * subscription was down cost nothing more: what is kept here is stale by nature, and served only when nothing fresher
 * can be had.
 */
@Injectable()
export class UserRowFallback implements OnModuleInit {
  private readonly logger = new Logger(UserRowFallback.name);
  /** userId → schema version → features, least recently read first. */
  private readonly users = new Map<string, Map<string, FeatureMap | null>>();
  /** Bumped by every notice: a read that started before it may hold the overwritten values. */
  private generation = 0;
  private readonly served: Counter;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly changes: FeatureChangeRepository,
    metrics: MetricsService,
  ) {
    const registers = [metrics.registry];
    this.served = new Counter({
      name: 'user_row_fallback_hits_total',
      help: 'Users scored from the features this process last read of them, while Redis and Postgres could not answer',
      registers,
    });
    metrics.scrapedGauge(
      'user_row_fallback_entries',
      'Users whose last read features this process keeps for an outage of both stores',
      () => this.users.size,
    );
  }

  async onModuleInit(): Promise<void> {
    if (this.config.USER_ROW_FALLBACK_ENTRIES === 0) return;
    // A read under way during a drop may hold values a lost notice would have dropped: the generation moves on both.
    await this.changes
      .subscribe({
        onNotice: (notice) => this.invalidate(notice),
        onDropped: () => this.generation++,
        onReconnect: () => this.generation++,
      })
      .catch((e: Error) =>
        this.logger.warn(
          `no features:changed subscription (${e.message}); users are not kept for an outage until it is made`,
        ),
      );
  }

  /** Taken before a read and handed to remember(): a write notice in between makes the read unsafe to keep. */
  get epoch(): number {
    return this.generation;
  }

  remember(schemaVersion: string, userId: string, features: FeatureMap | null, epoch: number): void {
    const capacity = this.config.USER_ROW_FALLBACK_ENTRIES;
    // Nothing is kept while notices are not received (not yet, dropped, or never): a kept row could outlive a write.
    if (!this.changes.listening || capacity === 0 || epoch !== this.generation) return;
    const bySchema = this.users.get(userId) ?? new Map<string, FeatureMap | null>();
    // Re-inserted to mark it most recently read: a Map iterates in insertion order, so the oldest comes first.
    this.users.delete(userId);
    this.users.set(userId, bySchema.set(schemaVersion, features));
    if (this.users.size > capacity) this.users.delete(this.users.keys().next().value!);
  }

  /** What was last read of the user under this schema (counted as served), or undefined if nothing is kept. */
  recall(schemaVersion: string, userId: string): { features: FeatureMap | null } | undefined {
    const bySchema = this.users.get(userId);
    if (!bySchema?.has(schemaVersion)) return undefined;
    this.served.inc();
    return { features: bySchema.get(schemaVersion)! };
  }

  private invalidate({ kind, ids }: FeatureChangeNotice): void {
    if (kind !== 'user') return;
    this.generation++;
    for (const id of ids) this.users.delete(id);
  }
}
