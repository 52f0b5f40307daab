import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';

import { DeadlineExceededError, OverloadedError, type DomainError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import type { Scorer } from '@app/mmoe/serving';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { toHttpException } from '../platform/error.filter';
import { requestContext } from '../platform/json-logger';
import { MetricsService } from '../platform/metrics.service';
import {
  DEADLINE_HEADER,
  deadlineBudgetMs,
  DEGRADED_HEADER,
  refusalOf,
  type Refusal,
  type ShedReason,
} from './admission.rules';
import { MAX_CANDIDATES } from './dto/score-request.limits';

/** How a shed request was answered: refused (503 / 504), or ranked in request order because it opted in. */
export type ShedAnswer = 'refused' | 'degraded';

/** Shed requests are logged as one summary line per window, not one line each (an overload sheds hundreds a second). */
const LOG_WINDOW_MS = 1000;
/** The scoring route, as Fastify names it (request.routeOptions.url). */
const SCORE_ROUTE = '/v1/score';
/** Weight of the newest request in the running means of score bodies' bytes and candidates. */
const BODY_SIZE_WEIGHT = 0.05;

/**
 * Admission control in front of inference (refusalOf): a score request is refused at once when the work already
 * admitted would not let it finish before its deadline, or would exceed SCORE_MAX_ROWS_IN_FLIGHT, so that the queue
 * stays short enough for the admitted ones to be on time. The time check runs first as the request arrives, before
 * its body is read (refusalOnArrival): parsing and validating 500 candidate ids is most of what a refusal costs the
 * event loop, and an overloaded process spends its event loop on refusals (measured in the app through inject, 2,000
 * refusals of a 500-candidate body: 0.14 ms of CPU each on arrival, 0.37-0.40 ms after the body). It prices the
 * request's own pass too, its candidates estimated from its Content-Length: checked with none, it let through every
 * request the queue alone did not rule out, and an overloaded queue settles just where a request's own pass tips it
 * over, so nearly every refusal came after the body (a profile of the overload row: the refusals' parsing,
 * validation and error path were the event loop's largest cost). Counts every shed request in
 * `score_requests_shed_total` and logs them as a summary line per second.
 */
@Injectable()
export class ScoringAdmission implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('ScoringAdmission');
  private readonly shedCounter: Counter<'reason' | 'answer'>;
  /** Rows of the requests admitted and not answered yet. */
  private rowsInFlight = 0;
  /** Rows admitted and not yet handed to the engine (reading features): work the engine does not know of yet. */
  private pendingRows = 0;
  /**
   * Running means of the validated score bodies' bytes and candidates (0 until one is seen): their ratio turns a
   * Content-Length into candidates on arrival. Means of each rather than of their ratio, so that one odd body (a single
   * candidate padded to the body limit) moves the estimate by its share of the bytes, not by its own ratio.
   */
  private bodyBytes = 0;
  private bodyCandidates = 0;
  private window?: { timer: NodeJS.Timeout; counts: Map<string, number> };

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly lifecycle: ModelLifecycleService,
    private readonly adapterHost: HttpAdapterHost,
    metrics: MetricsService,
  ) {
    this.shedCounter = new Counter({
      name: 'score_requests_shed_total',
      help:
        'Score requests not scored: overloaded (refused at once: the work admitted ahead would make them late) or ' +
        'deadline (it passed before inference, or would before it could be done); answered refused (503 / 504) or ' +
        'degraded (request order)',
      labelNames: ['reason', 'answer'] as const,
      registers: [metrics.registry],
    });
    for (const reason of ['overloaded', 'deadline'] as const)
      for (const answer of ['refused', 'degraded'] as const) this.shedCounter.inc({ reason, answer }, 0);
    metrics.scrapedGauge(
      'score_rows_in_flight',
      'Candidates of the score requests admitted and not answered yet (bounded by SCORE_MAX_ROWS_IN_FLIGHT)',
      () => this.rowsInFlight,
    );
  }

  /** Runs before the server is ready, when Fastify still takes hooks: the refusal before the body. */
  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', (request, reply, done) => {
      const refusal = this.refusalOnArrival(request);
      if (!refusal) return done();
      this.shed(refusal.reason, 'refused');
      const http = toHttpException(this.errorOf(refusal));
      void reply
        .code(http.getStatus())
        .header('Retry-After', String(refusal.retryAfterSeconds))
        .send(http.getResponse());
    });
  }

  /**
   * A score request refused as it arrives: the inference already queued and its own pass, for the candidates its size
   * suggests, would make it late (refusalOf's time check; the rows-in-flight bound waits for the body's true count, as
   * a guess too high there would refuse what the check after the body admits). Not one that opts in to a degraded
   * answer (that needs its candidates), nor one with a bad deadline or degraded header (the route answers that 400).
   */
  private refusalOnArrival(request: FastifyRequest): Refusal | undefined {
    if (request.method !== 'POST' || request.routeOptions.url !== SCORE_ROUTE) return undefined;
    const { [DEADLINE_HEADER]: deadline, [DEGRADED_HEADER]: degraded } = request.headers;
    if ((degraded !== undefined && degraded !== 'false') || Array.isArray(deadline)) return undefined;
    const scorer = this.lifecycle.current().production?.scorer;
    const rows = this.candidatesOnArrival(Number(request.headers['content-length']));
    const inference = scorer?.estimate?.(rows, this.pendingRows);
    if (!inference) return undefined;
    let remainingMs: number;
    try {
      remainingMs = deadlineBudgetMs(deadline, this.config.SCORE_DEADLINE_MS, this.config.SCORE_DEADLINE_MAX_MS);
    } catch {
      return undefined;
    }
    const refusal = refusalOf({ remainingMs, rows, rowsInFlight: 0, maxRowsInFlight: Infinity, inference });
    return refusal?.reason === 'overloaded' ? refusal : undefined;
  }

  /**
   * About how many candidates a score body of `bytes` brings, rounded down; 0 without a Content-Length or before a
   * body has been seen (then only the work queued ahead can refuse it). The whole body counts as candidates (its user
   * id and context too), so a small request with a large context is priced a few rows' pass too long: refused on
   * arrival at worst that much sooner, and only behind a queue.
   */
  private candidatesOnArrival(bytes: number): number {
    if (!(bytes > 0 && this.bodyCandidates > 0)) return 0;
    return Math.min(MAX_CANDIDATES, Math.floor((bytes * this.bodyCandidates) / this.bodyBytes));
  }

  /** A validated score body of `bytes` (its Content-Length) and `candidates`: the size of the ones to come. */
  observeBody(bytes: number, candidates: number): void {
    if (!(bytes > 0 && candidates > 0)) return;
    if (this.bodyCandidates === 0) [this.bodyBytes, this.bodyCandidates] = [bytes, candidates];
    else {
      this.bodyBytes += BODY_SIZE_WEIGHT * (bytes - this.bodyBytes);
      this.bodyCandidates += BODY_SIZE_WEIGHT * (candidates - this.bodyCandidates);
    }
  }

  /** The error a refused request is answered with (the error filter maps it). */
  errorOf({ reason, retryAfterSeconds }: Refusal): DomainError {
    return reason === 'overloaded'
      ? new OverloadedError(
          'overloaded: the inference already admitted would not leave this request time to finish before its deadline',
          retryAfterSeconds,
        )
      : new DeadlineExceededError(
          'the deadline passed before inference, or would before it could be done; the request was not scored',
        );
  }

  /**
   * Admits `rows` candidates to be scored by `scorer` before `deadline` (performance.now()), or says why not. An
   * admitted request must call handedOver() when the engine has its rows, and done() when it is answered.
   */
  admit(scorer: Scorer, rows: number, deadline: number): Refusal | undefined {
    const refusal = refusalOf({
      remainingMs: deadline - performance.now(),
      rows,
      rowsInFlight: this.rowsInFlight,
      maxRowsInFlight: this.config.SCORE_MAX_ROWS_IN_FLIGHT,
      // The rows admitted before this request and still reading features are ahead of it too.
      inference: scorer.estimate?.(rows, this.pendingRows),
    });
    if (!refusal) {
      this.rowsInFlight += rows;
      this.pendingRows += rows;
    }
    return refusal;
  }

  handedOver(rows: number): void {
    this.pendingRows -= rows;
  }

  done(rows: number): void {
    this.rowsInFlight -= rows;
  }

  shed(reason: ShedReason, answer: ShedAnswer): void {
    this.shedCounter.inc({ reason, answer });
    const key = `${reason} ${answer}`;
    // Outside the request's context: the summary is no one request's, and its line must not carry this one's id.
    this.window ??= requestContext.exit(() => ({
      timer: setTimeout(() => this.logWindow(), LOG_WINDOW_MS).unref(),
      counts: new Map(),
    }));
    this.window.counts.set(key, (this.window.counts.get(key) ?? 0) + 1);
  }

  onModuleDestroy(): void {
    if (this.window) {
      clearTimeout(this.window.timer);
      this.logWindow();
    }
  }

  private logWindow(): void {
    const counts = this.window!.counts;
    this.window = undefined;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const parts = [...counts].map(([key, n]) => `${n} ${key}`).join(', ');
    this.logger.warn(`shed ${total} score requests in the last ${LOG_WINDOW_MS / 1000} s (${parts})`);
  }
}
