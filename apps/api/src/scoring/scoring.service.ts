import { Inject, Injectable } from '@nestjs/common';

import {
  ConflictError,
  DeadlineExceededError,
  InvalidFieldsError,
  NotFoundError,
  OverloadedError,
  UnavailableError,
} from '@app/common';
import { DeadlineExpiredError, type ScoreResult } from '@app/mmoe/serving';
import { assertKnownTasks, compileFusion, parseFusion, type CompiledFusion } from '@app/registry';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { ServingModel } from '../models/serving-model';
import type { Refusal } from './admission.rules';
import type { ScoredResponse } from './dto/score-response.serializer';
import type { DegradedScoreResponseDto, ScoreRequestDto } from './dto/score.dto';
import { rank } from './ranking';
import { RequestAssembler, type AssembledRequest } from './request-assembler';
import { SCORE_OBSERVER, type ScoreObserver } from './score-observer.port';
import { ScoringAdmission } from './scoring.admission';
import { ScoringMetrics, type StageTimer } from './scoring.metrics';

/**
 * Ranks candidates for a user, in stages (each timed in `scoring_stage_duration_seconds`):
 *   admission  refused at once (OverloadedError) when the inference already admitted would make it miss its deadline;
 *   features   the candidates' encoded rows and the user's features (RequestAssembler, shared with the shadow);
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
  constructor(
    private readonly lifecycle: ModelLifecycleService,
    private readonly assembler: RequestAssembler,
    private readonly metrics: ScoringMetrics,
    private readonly admission: ScoringAdmission,
    @Inject(SCORE_OBSERVER) private readonly observer: ScoreObserver,
  ) {}

  /**
   * `deadline`: performance.now() by which the answer is due (the request's arrival plus its budget);
   * `allowDegraded`: a request that cannot be scored in time is answered in request order rather than refused;
   * `bodyBytes`: its body's size (Content-Length), from which admission learns to estimate a request's candidates
   * before its body is read.
   */
  async score(
    request: ScoreRequestDto,
    requestId: string,
    { deadline, allowDegraded, bodyBytes }: { deadline: number; allowDegraded: boolean; bodyBytes?: number },
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
      if (bodyBytes !== undefined) this.admission.observeBody(bodyBytes, rows);
      const fusion = requestFusion(model, request);
      const refusal = this.admission.admit(model.scorer, rows, deadline);
      if (refusal) return this.shed(request, requestId, refusal, allowDegraded);
      let result: ScoreResult;
      let prepared: AssembledRequest;
      try {
        prepared = await this.prepare(model, request, timer, deadline);
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

  /**
   * The features and assembly stages of an admitted request, until its rows are ready for the engine; dropped at its
   * deadline (the reads go on, their result unused): a Postgres that stops answering, with no error, would otherwise
   * hold the request for as long as TCP waits.
   */
  private async prepare(
    model: ServingModel,
    request: ScoreRequestDto,
    timer: StageTimer,
    deadline: number,
  ): Promise<AssembledRequest> {
    try {
      const assembled = await byDeadline(
        this.assembler.assemble(model, request, () => timer.stage('features')),
        deadline,
      );
      timer.stage('assembly');
      return assembled;
    } finally {
      this.admission.handedOver(request.itemIds.length);
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
}

/** `work`'s outcome, or DeadlineExpiredError if `deadline` (performance.now()) comes first. */
export function byDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExpiredError()), Math.max(0, deadline - performance.now()));
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** An error the API answers with a 4xx: the request's fault, not the model's. */
function isClientError(e: unknown): boolean {
  return e instanceof InvalidFieldsError || e instanceof NotFoundError || e instanceof ConflictError;
}

/** A request not scored for lack of time (shed): neither the request's fault nor the model's. */
function isShed(e: unknown): boolean {
  return e instanceof OverloadedError || e instanceof DeadlineExceededError;
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
