import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { LATENCY_BUCKETS, MetricsService } from '../platform/metrics.service';

export interface ScoringObservation {
  role: 'production' | 'canary';
  candidates: number;
  featuresSeconds: number;
  modelSeconds: number;
  totalSeconds: number;
  cacheHits: number;
  cacheMisses: number;
}

/** Scoring's Prometheus metrics; the cache hit ratio is hits / (hits + misses) of the two counters. */
@Injectable()
export class ScoringMetrics {
  private readonly featuresDuration: Histogram;
  private readonly modelDuration: Histogram;
  private readonly totalDuration: Histogram;
  private readonly cacheHits: Counter;
  private readonly cacheMisses: Counter;
  private readonly candidates: Counter<'role'>;

  constructor(metrics: MetricsService, lifecycle: ModelLifecycleService) {
    const registers = [metrics.registry];
    const histogram = (name: string, help: string) =>
      new Histogram({ name, help, buckets: LATENCY_BUCKETS, registers });
    this.featuresDuration = histogram(
      'scoring_features_duration_seconds',
      'Time to fetch the user and candidate features of a score request',
    );
    this.modelDuration = histogram(
      'scoring_model_duration_seconds',
      'Time to encode and score the candidates of a score request',
    );
    this.totalDuration = histogram(
      'scoring_total_duration_seconds',
      'Time to serve a score request, from model lease to ranked items',
    );
    this.cacheHits = new Counter({
      name: 'feature_cache_hits_total',
      help: 'Feature vectors found in Redis',
      registers,
    });
    this.cacheMisses = new Counter({
      name: 'feature_cache_misses_total',
      help: 'Feature vectors read from Postgres after a Redis miss',
      registers,
    });
    this.candidates = new Counter({
      name: 'scored_candidates_total',
      help: 'Candidates scored, by the role of the model',
      labelNames: ['role'],
      registers,
    });
    new Gauge({
      name: 'served_model_version',
      help: 'Model versions loaded for serving (value 1), by role',
      labelNames: ['role', 'version'] as const,
      registers,
      // Read at scrape time, so that a swap never leaves a stale series behind.
      collect() {
        this.reset();
        const { production, canary } = lifecycle.current();
        for (const model of [production, canary])
          if (model) this.set({ role: model.role, version: String(model.versionId) }, 1);
      },
    });
  }

  observe(o: ScoringObservation): void {
    this.featuresDuration.observe(o.featuresSeconds);
    this.modelDuration.observe(o.modelSeconds);
    this.totalDuration.observe(o.totalSeconds);
    this.cacheHits.inc(o.cacheHits);
    this.cacheMisses.inc(o.cacheMisses);
    this.candidates.inc({ role: o.role }, o.candidates);
  }
}
