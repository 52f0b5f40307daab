import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { AnsweringRole } from '../models/serving-model';
import { LATENCY_BUCKETS, MetricsService } from '../platform/metrics.service';

/** The stages of a score request, as timed by the API itself (bench:serve reads them for its breakdown). */
export const SCORING_STAGES = ['validation', 'features', 'assembly', 'inference', 'ranking', 'serialisation'] as const;
export type ScoringStage = (typeof SCORING_STAGES)[number];

/** Times consecutive stages: each stage() call closes the one that ran since the previous call. */
export interface StageTimer {
  stage(name: ScoringStage): void;
  readonly durations: Map<ScoringStage, number>;
  readonly startedAt: number;
}

/** What the feature store's Redis cache answered for one request. */
export interface FeatureCacheOutcome {
  hits: number;
  misses: number;
  /** Of the misses, those whose Redis node could not answer (read from Postgres in the degraded mode). */
  unavailable: number;
}

/** Served requests per model version and role; the rollout policy's serving guardrails read them (ServingStatsPublisher). */
export const MODEL_DURATION_METRIC = 'scoring_model_duration_seconds';
export const MODEL_REQUESTS_METRIC = 'scoring_model_requests_total';
export type ModelOutcome = 'served' | 'failed';

/** Scoring's Prometheus metrics. */
@Injectable()
export class ScoringMetrics {
  private readonly stageDuration: Histogram<'stage'>;
  private readonly totalDuration: Histogram;
  private readonly modelDuration: Histogram<'role' | 'version'>;
  private readonly modelRequests: Counter<'role' | 'version' | 'outcome'>;
  private readonly candidates: Counter<'role'>;
  private readonly redisHits: Counter;
  private readonly redisMisses: Counter;
  private readonly redisUnavailable: Counter;
  private readonly degradedRequests: Counter;

  constructor(metrics: MetricsService, lifecycle: ModelLifecycleService) {
    const registers = [metrics.registry];
    this.stageDuration = new Histogram({
      name: 'scoring_stage_duration_seconds',
      help: `Time spent in each stage of a score request (${SCORING_STAGES.join(', ')})`,
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.totalDuration = new Histogram({
      name: 'scoring_total_duration_seconds',
      help: 'Time to serve a score request, from model lease to ranked items',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.modelDuration = new Histogram({
      name: MODEL_DURATION_METRIC,
      help: 'Time to serve a score request that reached a model, by its role and version (failed requests included)',
      labelNames: ['role', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.modelRequests = new Counter({
      name: MODEL_REQUESTS_METRIC,
      help: 'Score requests that reached a model, by its role and version, served or failed (a server error)',
      labelNames: ['role', 'version', 'outcome'],
      registers,
    });
    this.redisHits = new Counter({
      name: 'feature_cache_hits_total',
      help: 'Feature vectors (the user, candidates not cached in memory) found in Redis',
      registers,
    });
    this.redisMisses = new Counter({
      name: 'feature_cache_misses_total',
      help: 'Feature vectors read from Postgres after a Redis miss',
      registers,
    });
    this.redisUnavailable = new Counter({
      name: 'feature_cache_unavailable_total',
      help: 'Of the misses, feature vectors whose Redis node could not answer (read from Postgres, degraded mode)',
      registers,
    });
    this.degradedRequests = new Counter({
      name: 'feature_cache_degraded_requests_total',
      help: 'Score requests that read some features from Postgres because a Redis node could not answer',
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
      help: 'Model versions loaded for serving (value 1), by role, with the precision of their serving graph',
      labelNames: ['role', 'version', 'precision'] as const,
      registers,
      // Read at scrape time, so that a swap never leaves a stale series behind.
      collect() {
        this.reset();
        const { production, canary, shadow } = lifecycle.current();
        for (const model of [production, canary, shadow])
          if (model) this.set({ role: model.role, version: String(model.versionId), precision: model.precision }, 1);
      },
    });
  }

  timer(): StageTimer {
    const startedAt = performance.now();
    let last = startedAt;
    const durations = new Map<ScoringStage, number>();
    return {
      startedAt,
      durations,
      stage(name) {
        const now = performance.now();
        durations.set(name, now - last);
        last = now;
      },
    };
  }

  /** A stage timed outside the service (validation in its pipe, serialisation in the controller). */
  observeStage(stage: ScoringStage, ms: number): void {
    this.stageDuration.observe({ stage }, ms / 1000);
  }

  /** `featureCache`: what the feature store's Redis cache answered for this request. */
  observe(
    model: { role: AnsweringRole; versionId: number },
    candidates: number,
    timer: StageTimer,
    featureCache: FeatureCacheOutcome,
  ): void {
    this.redisHits.inc(featureCache.hits);
    this.redisMisses.inc(featureCache.misses);
    if (featureCache.unavailable > 0) {
      this.redisUnavailable.inc(featureCache.unavailable);
      this.degradedRequests.inc();
    }
    for (const [stage, ms] of timer.durations) this.stageDuration.observe({ stage }, ms / 1000);
    const seconds = (performance.now() - timer.startedAt) / 1000;
    this.totalDuration.observe(seconds);
    this.candidates.inc({ role: model.role }, candidates);
    this.observeModel(model, 'served', seconds);
  }

  /** A request that reached `model` and failed with a server error (a client's bad input is not the model's failure). */
  observeFailure(model: { role: AnsweringRole; versionId: number }, timer: StageTimer): void {
    this.observeModel(model, 'failed', (performance.now() - timer.startedAt) / 1000);
  }

  private observeModel(
    model: { role: AnsweringRole; versionId: number },
    outcome: ModelOutcome,
    seconds: number,
  ): void {
    const labels = { role: model.role, version: String(model.versionId) };
    this.modelDuration.observe(labels, seconds);
    this.modelRequests.inc({ ...labels, outcome });
  }
}
