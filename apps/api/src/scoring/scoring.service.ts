import { Injectable, Logger, ServiceUnavailableException } from '@nestjs/common';

import type { FeatureMap } from '@app/db';
import {
  assembleRows,
  encodeSlice,
  gateOfTask,
  overlaySlices,
  topologyOf,
  type EncodedSlice,
  type ScoreResult,
} from '@app/mmoe/serving';
import { assertKnownTasks } from '@app/registry';

import { FeatureStoreService } from '../features/feature-store.service';
import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { ServingModel } from '../models/serving-model';
import type { ScoredItemDto, ScoreRequestDto, ScoreResponseDto } from './dto/score.dto';
import { ItemRowCache, type CachedItem } from './item-rows.cache';
import { ScoringMetrics } from './scoring.metrics';

/**
 * Ranks candidates for a user, in stages (each timed in `scoring_stage_duration_seconds`):
 *   features   the candidates' encoded rows from this process's cache; the user and the misses in one round trip
 *              to the feature store (Redis, then Postgres);
 *   assembly   one input row per candidate: its item's slice over the user's over the request context's;
 *   inference  one batched forward pass of the leased model (on the inference threads);
 *   ranking    the weighted blend of the task scores, one sort.
 * The lease keeps the model alive until the response is built, so a swap during the request never disposes the
 * model it is using.
 */
@Injectable()
export class ScoringService {
  private readonly logger = new Logger(ScoringService.name);
  /** `version:feature` pairs already reported as holding non-numeric values, so that a bad row logs once. */
  private readonly reportedBadValues = new Set<string>();

  constructor(
    private readonly lifecycle: ModelLifecycleService,
    private readonly featureStore: FeatureStoreService,
    private readonly itemRows: ItemRowCache,
    private readonly metrics: ScoringMetrics,
  ) {}

  async score(request: ScoreRequestDto, requestId: string): Promise<ScoreResponseDto> {
    const timer = this.metrics.timer();
    const lease = this.lifecycle.acquire(request.userId);
    if (!lease) {
      throw new ServiceUnavailableException(
        'no production model is loaded: register a model version and promote it to production (admin API)',
      );
    }
    try {
      const { model } = lease;
      const weights = taskWeights(model, request.objectiveWeights);
      const { user, items, featureCache } = await this.candidateFeatures(model, request.userId, request.itemIds);
      timer.stage('features');
      const shared = overlaySlices(this.slice(model, request.context), this.slice(model, user));
      const rows = assembleRows(
        shared,
        items.map((item) => item.slice),
      );
      timer.stage('assembly');
      const result = await model.scorer.score(rows, { gateWeights: request.explain === true });
      timer.stage('inference');
      const response: ScoreResponseDto = {
        requestId,
        modelVersion: model.versionId,
        modelRole: model.role,
        items: rank(model, request.itemIds, items, result, weights),
      };
      if (!user) response.userUnknown = true;
      timer.stage('ranking');
      this.metrics.observe(model.role, request.itemIds.length, timer, featureCache);
      return response;
    } finally {
      lease.release();
    }
  }

  /**
   * The user's stored features and each candidate's encoded item: cached ones from memory, the others read (with the
   * user, in one round trip), encoded once, and cached.
   */
  private async candidateFeatures(
    model: ServingModel,
    userId: string,
    itemIds: string[],
  ): Promise<{ user?: FeatureMap; items: CachedItem[]; featureCache: { hits: number; misses: number } }> {
    const lookup = this.itemRows.lookup(model.versionId, itemIds);
    const missIds = lookup.misses.map((i) => itemIds[i]);
    const fetched = await this.featureStore.fetch(
      { version: model.featureSchemaVersion, featureNames: model.featureNames },
      userId,
      missIds,
    );
    const fills = lookup.misses.map((position, k) => {
      const features = fetched.items[k];
      const item: CachedItem = { slice: features && this.slice(model, features) };
      lookup.items[position] = item;
      return { id: missIds[k], item };
    });
    this.itemRows.store(model.versionId, lookup, fills);
    return {
      user: fetched.user,
      items: lookup.items as CachedItem[],
      featureCache: { hits: fetched.cacheHits, misses: fetched.cacheMisses },
    };
  }

  /** A stored value of the wrong type (a string in a numeric feature) is scored as missing rather than failing the request. */
  private slice(model: ServingModel, record: Record<string, unknown> | undefined): EncodedSlice {
    const { slice, notNumbers } = encodeSlice(model.encoder, record);
    for (const feature of notNumbers) {
      const key = `${model.versionId}:${feature}`;
      if (this.reportedBadValues.has(key)) continue;
      this.reportedBadValues.add(key);
      this.logger.warn(
        `model ${model.versionId}: stored values of numeric feature "${feature}" are not numbers; they are scored as missing`,
      );
    }
    return slice;
  }
}

/** Blend weights in task order: the request's override as a whole, else the model's defaults; a task left out weighs 0. */
function taskWeights(model: ServingModel, override: Record<string, number> | undefined): Float64Array {
  const given = override ?? model.objectiveWeights;
  if (override) assertKnownTasks(model.taskNames, override);
  return Float64Array.from(model.taskNames, (name) => given[name] ?? 0);
}

/** Items sorted by blended score, highest first (ties keep request order), each with its per-task scores. */
function rank(
  model: ServingModel,
  itemIds: string[],
  items: CachedItem[],
  result: ScoreResult,
  weights: Float64Array,
): ScoredItemDto[] {
  const tasks = model.taskNames;
  const blended = new Float64Array(itemIds.length);
  weights.forEach((w, t) => {
    if (w === 0) return;
    const scores = result.scores[t];
    for (let i = 0; i < blended.length; i++) blended[i] += w * scores[i];
  });
  const order = Uint32Array.from(itemIds, (_, i) => i).sort((a, b) => blended[b] - blended[a]);
  const gates = result.gateWeights && gateSlicer(model, result.gateWeights);
  return Array.from(order, (i) => {
    const scores: Record<string, number> = {};
    for (let t = 0; t < tasks.length; t++) scores[tasks[t]] = result.scores[t][i];
    const item: ScoredItemDto = { itemId: itemIds[i], score: blended[i], scores };
    if (!items[i].slice) item.unknown = true;
    if (gates) item.gates = gates(i);
    return item;
  });
}

/** Row i's gate weights per task name; a task without a gate (shared-bottom) has none. */
function gateSlicer(model: ServingModel, gateWeights: Float32Array[]): (row: number) => Record<string, number[]> {
  const topology = topologyOf(model.spec);
  const byTask = model.spec.tasks.flatMap((task, t) => {
    const g = gateOfTask(topology, t);
    return g === undefined
      ? []
      : [{ name: task.name, weights: gateWeights[g], width: topology.gates[g].experts.length }];
  });
  return (row) =>
    Object.fromEntries(
      byTask.map(({ name, weights, width }) => [name, Array.from(weights.subarray(row * width, (row + 1) * width))]),
    );
}
