import { Inject, Injectable, Logger } from '@nestjs/common';

import {
  ConflictError,
  DeadlineExceededError,
  InvalidFieldsError,
  NotFoundError,
  OverloadedError,
  UnavailableError,
} from '@app/common';
import { isDatabaseUnavailable, type FeatureMap } from '@app/db';
import {
  assembleRequest,
  DeadlineExpiredError,
  encodeSlice,
  overlaySlices,
  type EncodedSlice,
  type RequestBatch,
  type ScoreResult,
} from '@app/mmoe/serving';
import { assertKnownTasks, compileFusion, parseFusion, type CompiledFusion } from '@app/registry';

import { FeatureStoreService } from '../features/feature-store.service';
import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { ServingModel } from '../models/serving-model';
import type { Refusal } from './admission.rules';
import type { ScoredResponse } from './dto/score-response.serializer';
import type { DegradedScoreResponseDto, ScoreRequestDto } from './dto/score.dto';
import { ItemRowCache, type CachedItem } from './item-rows.cache';
import { rank } from './ranking';
import { SCORE_OBSERVER, type ScoreObserver } from './score-observer.port';
import { ScoringAdmission } from './scoring.admission';
import { ScoringMetrics, type FeatureCacheOutcome, type StageTimer } from './scoring.metrics';

/**
 * Ranks candidates for a user, in stages (each timed in `scoring_stage_duration_seconds`):
 *   admission  refused at once (OverloadedError) when the inference already admitted would make it miss its deadline;
 *   features   the candidates' encoded rows from this process's cache; the user and the misses in one round trip
 *              to the feature store (Redis, then Postgres);
 *   assembly   the user's slice over the request context's once, each candidate's item-side columns;
 *   inference  one batched forward pass of the leased model (on the inference threads), the shared features fed once;
 *              dropped, never computed, if the deadline passes before it starts (DeadlineExceededError);
 *   ranking    the fusion of the task scores (the version's rule or the request's), one sort.
 * A request that is not scored (shed) writes nothing: no prediction log row, no shadow work. With
 * `x-allow-degraded: true` it is answered instead with its candidates in request order, flagged `degraded`.
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
    private readonly admission: ScoringAdmission,
    @Inject(SCORE_OBSERVER) private readonly observer: ScoreObserver,
  ) {}

  /**
   * `deadline`: performance.now() by which the answer is due (the request's arrival plus its budget);
   * `allowDegraded`: a request that cannot be scored in time is answered in request order rather than refused.
   */
  async score(
    request: ScoreRequestDto,
    requestId: string,
    { deadline, allowDegraded }: { deadline: number; allowDegraded: boolean },
  ): Promise<ScoredResponse | DegradedScoreResponseDto> {
    const timer = this.metrics.timer();
    const lease = this.lifecycle.acquire(request.userId);
    if (!lease) {
      throw new UnavailableError(
        'no production model is loaded: register a model version and promote it to production (admin API)',
      );
    }
    try {
      const { model } = lease;
      const rows = request.itemIds.length;
      const fusion = requestFusion(model, request);
      const refusal = this.admission.admit(model.scorer, rows, deadline);
      if (refusal) return this.shed(request, requestId, refusal, allowDegraded);
      let result: ScoreResult;
      let prepared: Prepared;
      try {
        prepared = await this.prepare(model, request, timer);
        result = await model.scorer.scoreRequest(prepared.batch, { gateWeights: request.explain === true, deadline });
      } catch (e) {
        if (e instanceof DeadlineExpiredError) return this.shed(request, requestId, DEADLINE_PASSED, allowDegraded);
        throw e;
      } finally {
        this.admission.done(rows);
      }
      const { user, items, featureCache } = prepared;
      timer.stage('inference');
      const unknown = new Uint8Array(rows);
      for (let i = 0; i < rows; i++) if (!items[i].slice) unknown[i] = 1;
      const response: ScoredResponse = {
        requestId,
        model,
        fusion: { type: fusion.rule.type, source: fusion === model.fusion ? 'model' : 'request' },
        ranking: rank(request.itemIds, unknown, result, fusion),
        userUnknown: !user,
      };
      timer.stage('ranking');
      this.metrics.observe(model, rows, timer, featureCache);
      this.observer.served({ requestId, request, model, ranking: response.ranking });
      return response;
    } catch (e) {
      if (!isClientError(e) && !isShed(e)) this.metrics.observeFailure(lease.model, timer);
      throw e;
    } finally {
      lease.release();
    }
  }

  /** The features and assembly stages of an admitted request, until its rows are ready for the engine. */
  private async prepare(model: ServingModel, request: ScoreRequestDto, timer: StageTimer): Promise<Prepared> {
    const rows = request.itemIds.length;
    try {
      const { user, items, featureCache } = await this.candidateFeatures(model, request.userId, request.itemIds);
      timer.stage('features');
      const shared = overlaySlices(this.slice(model, request.context), this.slice(model, user));
      const batch = assembleRequest(
        model.sides,
        shared,
        items.map((item) => item.slice),
      );
      timer.stage('assembly');
      return { batch, user, items, featureCache };
    } finally {
      this.admission.handedOver(rows);
    }
  }

  /**
   * A request that will not be scored in time: counted and logged (ScoringAdmission), then refused, or answered in
   * request order when it allows a degraded answer. Either way nothing of it is logged or shadowed.
   */
  private shed(
    request: ScoreRequestDto,
    requestId: string,
    refusal: Refusal,
    allowDegraded: boolean,
  ): DegradedScoreResponseDto {
    this.admission.shed(refusal.reason, allowDegraded ? 'degraded' : 'refused');
    if (!allowDegraded) throw this.admission.errorOf(refusal);
    return {
      requestId,
      degraded: true,
      degradedReason: refusal.reason,
      items: request.itemIds.map((itemId) => ({ itemId })),
    };
  }

  /**
   * The user's stored features and each candidate's encoded item: cached ones from memory, the others read (with the
   * user, in one round trip), encoded once, and cached. When Postgres cannot answer for what Redis does not hold (both
   * down, or Redis restarted empty), what this process holds in memory past its TTL scores the request rather than a
   * 503 (stale rows, counted); only what it does not hold at all still fails.
   */
  private async candidateFeatures(model: ServingModel, userId: string, itemIds: string[]): Promise<CandidateFeatures> {
    try {
      return await this.readFeatures(model, userId, itemIds, false);
    } catch (e) {
      if (!isDatabaseUnavailable(e)) throw e;
      return this.readFeatures(model, userId, itemIds, true);
    }
  }

  private async readFeatures(
    model: ServingModel,
    userId: string,
    itemIds: string[],
    stale: boolean,
  ): Promise<CandidateFeatures> {
    const lookup = this.itemRows.lookup(model.versionId, itemIds, stale);
    const missIds = lookup.misses.map((i) => itemIds[i]);
    const fetched = await this.featureStore.fetch(
      { version: model.featureSchemaVersion, featureNames: model.featureNames },
      userId,
      missIds,
      { stale },
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
      featureCache: { hits: fetched.cacheHits, misses: fetched.cacheMisses, unavailable: fetched.cacheUnavailable },
    };
  }

  /** A stored value of the wrong type (a string in a numeric feature) is scored as missing rather than failing the request. */
  private slice(model: ServingModel, record: Record<string, unknown> | undefined): EncodedSlice {
    const { slice, unreadable } = encodeSlice(model.encoder, record);
    for (const feature of unreadable) {
      const key = `${model.versionId}:${feature}`;
      if (this.reportedBadValues.has(key)) continue;
      this.reportedBadValues.add(key);
      this.logger.warn(
        `model ${model.versionId}: stored values of feature "${feature}" cannot be read as its type; they are scored as missing`,
      );
    }
    return slice;
  }
}

interface CandidateFeatures {
  user?: FeatureMap;
  items: CachedItem[];
  featureCache: FeatureCacheOutcome;
}

/** An error the API answers with a 4xx: the request's fault, not the model's. */
function isClientError(e: unknown): boolean {
  return e instanceof InvalidFieldsError || e instanceof NotFoundError || e instanceof ConflictError;
}

/** A request not scored for lack of time (shed): neither the request's fault nor the model's. */
function isShed(e: unknown): boolean {
  return e instanceof OverloadedError || e instanceof DeadlineExceededError;
}

interface Prepared extends CandidateFeatures {
  batch: RequestBatch;
}

const DEADLINE_PASSED: Refusal = { reason: 'deadline', retryAfterSeconds: 1 };

/**
 * The rule this request ranks by: its own `fusion`, or its `objectiveWeights` as a sum (a task left out weighs 0),
 * else the version's (compiled once, at load). Checked against the model's tasks, every bad field named.
 */
function requestFusion(model: ServingModel, request: ScoreRequestDto): CompiledFusion {
  const { fusion, objectiveWeights } = request;
  if (fusion !== undefined && objectiveWeights !== undefined) {
    throw new InvalidFieldsError([
      { field: 'fusion', message: 'fusion and objectiveWeights cannot both be given (a sum rule holds its weights)' },
    ]);
  }
  const tasks = model.spec.tasks;
  if (fusion !== undefined) return compileFusion(parseFusion(fusion, tasks), tasks);
  if (objectiveWeights === undefined) return model.fusion;
  assertKnownTasks(model.taskNames, objectiveWeights);
  return compileFusion({ type: 'sum', weights: objectiveWeights }, tasks);
}
