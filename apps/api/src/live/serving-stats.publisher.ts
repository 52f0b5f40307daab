import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { ServingStatsRepository, type ServingCounts } from '@app/db';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { LATENCY_BUCKETS, MetricsService } from '../platform/metrics.service';
import { MODEL_DURATION_METRIC, MODEL_REQUESTS_METRIC } from '../scoring/scoring.metrics';

interface Snapshot {
  served: number;
  failed: number;
  /** Cumulative bucket counts, LATENCY_BUCKETS then +Inf. */
  buckets: number[];
}

/**
 * Writes what this process's own scoring histograms counted since the last write (per model version and role) to
 * Postgres every LIVE_AGGREGATION_SECONDS, where the rollout policy's check, in whichever process it runs, adds up all
 * of them. A write that fails is not lost: the next one carries its counts too.
 */
@Injectable()
export class ServingStatsPublisher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ServingStatsPublisher.name);
  private published = new Map<string, Snapshot>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly stats: ServingStatsRepository,
    private readonly lifecycle: ModelLifecycleService,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.publish(), this.config.LIVE_AGGREGATION_SECONDS * 1000).unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.publish();
  }

  /** Writes the counts since the last write; one write at a time. */
  async publish(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.write().finally(() => (this.running = undefined));
    await this.running;
  }

  private async write(): Promise<void> {
    const now = await this.snapshot();
    const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const rows: ServingCounts[] = [];
    for (const [key, current] of now) {
      const before = this.published.get(key) ?? { served: 0, failed: 0, buckets: current.buckets.map(() => 0) };
      const served = current.served - before.served;
      const failed = current.failed - before.failed;
      if (served + failed === 0) continue;
      const [role, version] = key.split(':');
      const cumulative = current.buckets.map((n, i) => n - before.buckets[i]);
      rows.push({
        versionId: Number(version),
        role: role as ServingCounts['role'],
        minute,
        requests: served + failed,
        errors: failed,
        latency: cumulative.map((n, i) => n - (i === 0 ? 0 : cumulative[i - 1])),
      });
    }
    try {
      await this.stats.add(rows);
      this.published = now;
      this.forgetRetired();
    } catch (e) {
      this.logger.warn(`serving counts not written (kept for the next write): ${(e as Error).message}`);
    }
  }

  /**
   * Drops the scoring series of the versions this process no longer serves, once their counts are written: a label
   * value kept for every version ever served would grow /metrics by each version of an hourly cadence for as long as
   * the process lives. A late request of a retired version starts its series again, from 0, and is written as such.
   */
  private forgetRetired(): void {
    const { production, canary, shadow } = this.lifecycle.current();
    const served = new Set([production, canary, shadow].flatMap((m) => (m ? [String(m.versionId)] : [])));
    const { requests, duration } = this.series();
    for (const key of [...this.published.keys()]) {
      const [role, version] = key.split(':');
      if (served.has(version)) continue;
      for (const outcome of ['served', 'failed']) requests?.remove({ role, version, outcome });
      duration?.remove({ role, version });
      this.published.delete(key);
    }
  }

  private series(): { requests?: Counter; duration?: Histogram } {
    const registry = this.metrics.registry;
    return {
      requests: registry.getSingleMetric(MODEL_REQUESTS_METRIC) as Counter | undefined,
      duration: registry.getSingleMetric(MODEL_DURATION_METRIC) as Histogram | undefined,
    };
  }

  /** This process's counts so far, by `role:version`. */
  private async snapshot(): Promise<Map<string, Snapshot>> {
    const { requests, duration } = this.series();
    const out = new Map<string, Snapshot>();
    if (!requests || !duration) return out;
    const entry = (labels: Partial<Record<string, string | number>>) => {
      const key = `${labels.role}:${labels.version}`;
      let s = out.get(key);
      if (!s)
        out.set(key, (s = { served: 0, failed: 0, buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0) }));
      return s;
    };
    for (const { labels, value } of (await requests.get()).values)
      entry(labels)[labels.outcome === 'failed' ? 'failed' : 'served'] += value;
    for (const { labels, value, metricName } of (await duration.get()).values) {
      if (metricName !== `${MODEL_DURATION_METRIC}_bucket`) continue;
      const i = labels.le === '+Inf' ? LATENCY_BUCKETS.length : LATENCY_BUCKETS.indexOf(Number(labels.le));
      if (i >= 0) entry(labels).buckets[i] = value;
    }
    return out;
  }
}
