import { Injectable, Logger } from '@nestjs/common';
import { Gauge } from 'prom-client';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { MetricsService } from '../platform/metrics.service';
import { LiveMetricsService, type VersionLiveMetrics } from './live-metrics.service';

/** The gauges cover the last hour; they are recomputed at most this often, however often Prometheus scrapes. */
const WINDOW_MS = 3_600_000;
const REFRESH_MS = 30_000;

/**
 * Online metrics of the serving versions as Prometheus gauges: live_model_metric{role, version, task, metric} over
 * the last hour (auc, gauc, logloss, meanPrediction, labelRate, count; rmse, mae, meanLabel for regression tasks).
 */
@Injectable()
export class LiveMetricsGauges {
  private readonly logger = new Logger(LiveMetricsGauges.name);
  private cached?: { at: number; series: { role: string; metrics: VersionLiveMetrics }[] };

  constructor(metrics: MetricsService, lifecycle: ModelLifecycleService, live: LiveMetricsService) {
    const serving = () => this.series(lifecycle, live);
    new Gauge({
      name: 'live_model_metric',
      help: 'Online metric of a serving version over the last hour (predictions joined with their events), by role and task',
      labelNames: ['role', 'version', 'task', 'metric'] as const,
      registers: [metrics.registry],
      async collect() {
        this.reset();
        for (const { role, metrics: m } of await serving()) {
          for (const [task, values] of Object.entries(m.tasks)) {
            for (const [metric, value] of Object.entries(values)) {
              if (typeof value === 'number') this.set({ role, version: String(m.versionId), task, metric }, value);
            }
          }
        }
      },
    });
  }

  private async series(lifecycle: ModelLifecycleService, live: LiveMetricsService) {
    if (this.cached && Date.now() - this.cached.at < REFRESH_MS) return this.cached.series;
    const { production, canary, shadow } = lifecycle.current();
    const since = new Date(Date.now() - WINDOW_MS);
    try {
      const series = await Promise.all(
        [production, canary, shadow]
          .filter((m) => m !== undefined)
          .map(async (m) => ({ role: m.role, metrics: await live.forVersion(m.versionId, since) })),
      );
      this.cached = { at: Date.now(), series };
      return series;
    } catch (e) {
      // A scrape must not fail because Postgres is slow or away; the gauges are just absent this time.
      this.logger.warn(`live metrics not computed for the scrape: ${(e as Error).message}`);
      return [];
    }
  }
}
