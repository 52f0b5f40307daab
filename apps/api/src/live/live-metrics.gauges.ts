import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { Gauge } from 'prom-client';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { MetricsService } from '../platform/metrics.service';
import { LiveMetricsService, type VersionLiveMetrics } from './live-metrics.service';

/** The gauges cover the last hour and are recomputed in the background this often, however often Prometheus scrapes. */
const WINDOW_MS = 3_600_000;
const REFRESH_MS = 30_000;

/**
 * Online metrics of the serving versions as Prometheus gauges: live_model_metric{role, version, task, metric} over
 * the last hour (auc, gauc, logloss, meanPrediction, labelRate, count; rmse, mae, meanLabel for regression tasks). A
 * scrape only reads what the last background refresh computed: it never waits for Postgres.
 */
@Injectable()
export class LiveMetricsGauges implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LiveMetricsGauges.name);
  private series: { role: string; metrics: VersionLiveMetrics }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    metrics: MetricsService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly live: LiveMetricsService,
  ) {
    const current = () => this.series;
    new Gauge({
      name: 'live_model_metric',
      help: 'Online metric of a serving version over the last hour (predictions joined with their events), by role and task',
      labelNames: ['role', 'version', 'task', 'metric'] as const,
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const { role, metrics: m } of current()) {
          for (const [task, values] of Object.entries(m.tasks)) {
            for (const [metric, value] of Object.entries(values)) {
              if (typeof value === 'number') this.set({ role, version: String(m.versionId), task, metric }, value);
            }
          }
        }
      },
    });
  }

  onApplicationBootstrap(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS).unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Recomputes the gauges of the versions serving now. */
  async refresh(): Promise<void> {
    const { production, canary, shadow } = this.lifecycle.current();
    const since = new Date(Date.now() - WINDOW_MS);
    try {
      this.series = await Promise.all(
        [production, canary, shadow]
          .filter((m) => m !== undefined)
          .map(async (m) => ({ role: m.role, metrics: await this.live.forVersion(m.versionId, since) })),
      );
    } catch (e) {
      // Postgres slow or away: the gauges keep their last values until the next refresh.
      this.logger.warn(`live metrics gauges not refreshed: ${(e as Error).message}`);
    }
  }
}
