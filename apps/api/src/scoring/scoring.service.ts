import { Injectable, Logger, ServiceUnavailableException } from '@nestjs/common';

import { gateOfTask, parseNumber, RowError, topologyOf, type EncodedDataset, type ScoreResult } from '@app/mmoe';
import { assertKnownTasks } from '@app/registry';

import { FeatureStoreService } from '../features/feature-store.service';
import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { ServingModel } from '../models/serving-model';
import type { ScoredItemDto, ScoreRequestDto, ScoreResponseDto } from './dto/score.dto';
import { ScoringMetrics } from './scoring.metrics';

type FeatureRecord = Record<string, unknown>;

/**
 * Ranks candidates for a user: features from the feature store, one batched forward pass of the leased model, a
 * weighted blend of the task scores, one sort. The lease keeps the model alive until the response is built, so a
 * swap during the request never disposes the model it is using.
 */
@Injectable()
export class ScoringService {
  private readonly logger = new Logger(ScoringService.name);
  /** `version:feature` pairs already reported as holding non-numeric values, so that a bad row logs once. */
  private readonly reportedBadValues = new Set<string>();

  constructor(
    private readonly lifecycle: ModelLifecycleService,
    private readonly featureStore: FeatureStoreService,
    private readonly metrics: ScoringMetrics,
  ) {}

  async score(request: ScoreRequestDto, requestId: string): Promise<ScoreResponseDto> {
    const started = performance.now();
    const lease = this.lifecycle.acquire(request.userId);
    if (!lease) {
      throw new ServiceUnavailableException(
        'no production model is loaded: register a model version and promote it to production (admin API)',
      );
    }
    try {
      const { model } = lease;
      const weights = taskWeights(model, request.objectiveWeights);
      const features = await this.featureStore.fetch(
        { version: model.featureSchemaVersion, featureNames: model.spec.features.map((f) => f.name) },
        request.userId,
        request.itemIds,
      );
      const fetched = performance.now();
      const encoded = this.encode(model, candidateRecords(request.context, features.user, features.items));
      const result = await model.scorer.score(encoded, { gateWeights: request.explain === true });
      const scored = performance.now();
      const response: ScoreResponseDto = {
        requestId,
        modelVersion: model.versionId,
        modelRole: model.role,
        items: rank(model, request.itemIds, features.items, result, weights),
      };
      if (!features.user) response.userUnknown = true;
      const done = performance.now();
      this.metrics.observe({
        role: model.role,
        candidates: request.itemIds.length,
        featuresSeconds: (fetched - started) / 1000,
        modelSeconds: (scored - fetched) / 1000,
        totalSeconds: (done - started) / 1000,
        cacheHits: features.cacheHits,
        cacheMisses: features.cacheMisses,
      });
      return response;
    } finally {
      lease.release();
    }
  }

  /** A stored value of the wrong type (a string in a numeric feature) is scored as missing rather than failing the request. */
  private encode(model: ServingModel, records: FeatureRecord[]): EncodedDataset {
    try {
      return model.encoder.encodeRecords(records);
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      for (const feature of dropNonNumeric(
        records,
        model.encoder.state.numeric.map((n) => n.name),
      )) {
        const key = `${model.versionId}:${feature}`;
        if (this.reportedBadValues.has(key)) continue;
        this.reportedBadValues.add(key);
        this.logger.warn(
          `model ${model.versionId}: stored values of numeric feature "${feature}" are not numbers; they are scored as missing`,
        );
      }
      return model.encoder.encodeRecords(records);
    }
  }
}

/** Blend weights in task order: the request's override as a whole, else the model's defaults; a task left out weighs 0. */
function taskWeights(model: ServingModel, override: Record<string, number> | undefined): Float64Array {
  const tasks = model.spec.tasks.map((t) => t.name);
  const given = override ?? model.objectiveWeights;
  if (override) assertKnownTasks(tasks, override);
  return Float64Array.from(tasks, (name) => given[name] ?? 0);
}

/**
 * One record per candidate: request context, then user features, then item features, so that on a name clash the
 * most specific source wins (item over user over context). Each record inherits the shared context + user record
 * instead of copying it: copying 24 features into each of 500 objects was the costliest step of a request after the
 * network itself. The shared record has no prototype, so a feature named like an Object method reads as missing.
 */
function candidateRecords(
  context: FeatureRecord | undefined,
  user: FeatureRecord | undefined,
  items: (FeatureRecord | undefined)[],
): FeatureRecord[] {
  const shared: FeatureRecord = Object.assign(Object.create(null), context, user);
  return items.map((item) => (item ? Object.assign(Object.create(shared), item) : shared));
}

/** Clears the values the encoder would reject (same parsing rule); returns the features that held any. */
function dropNonNumeric(records: FeatureRecord[], numericFeatures: string[]): Set<string> {
  const dropped = new Set<string>();
  for (const record of records) {
    for (const feature of numericFeatures) {
      try {
        parseNumber(record[feature], feature);
      } catch {
        record[feature] = undefined;
        dropped.add(feature);
      }
    }
  }
  return dropped;
}

/** Items sorted by blended score, highest first (ties keep request order), each with its per-task scores. */
function rank(
  model: ServingModel,
  itemIds: string[],
  items: (FeatureRecord | undefined)[],
  result: ScoreResult,
  weights: Float64Array,
): ScoredItemDto[] {
  const tasks = model.spec.tasks.map((t) => t.name);
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
    tasks.forEach((name, t) => (scores[name] = result.scores[t][i]));
    const item: ScoredItemDto = { itemId: itemIds[i], score: blended[i], scores };
    if (!items[i]) item.unknown = true;
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
