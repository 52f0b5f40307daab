import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';

import { APP_CONFIG, type AppConfig } from '@app/config';
import type { Scorer } from '@app/mmoe/serving';

import { MetricsService } from '../platform/metrics.service';
import { refusalOf, type Refusal, type ShedReason } from './admission.rules';

/** How a shed request was answered: refused (503 / 504), or ranked in request order because it opted in. */
export type ShedAnswer = 'refused' | 'degraded';

/** Shed requests are logged as one summary line per window, not one line each (an overload sheds hundreds a second). */
const LOG_WINDOW_MS = 1000;

/**
 * Admission control in front of inference (refusalOf): a score request is refused at once when the work already
 * admitted would not let it finish before its deadline, or would exceed SCORE_MAX_ROWS_IN_FLIGHT, so that the queue
 * stays short enough for the admitted ones to be on time. Counts every shed request in `score_requests_shed_total`
 * and logs them as a summary line per second.
 */
@Injectable()
export class ScoringAdmission implements OnModuleDestroy {
  private readonly logger = new Logger('ScoringAdmission');
  private readonly shedCounter: Counter<'reason' | 'answer'>;
  /** Rows of the requests admitted and not answered yet. */
  private rowsInFlight = 0;
  /** Rows admitted and not yet handed to the engine (reading features): work the engine does not know of yet. */
  private pendingRows = 0;
  private window?: { timer: NodeJS.Timeout; counts: Map<string, number> };

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    metrics: MetricsService,
  ) {
    this.shedCounter = new Counter({
      name: 'score_requests_shed_total',
      help:
        'Score requests not scored: overloaded (refused at once: the work admitted ahead would make them late) or ' +
        'deadline (their deadline passed before inference); answered refused (503 / 504) or degraded (request order)',
      labelNames: ['reason', 'answer'] as const,
      registers: [metrics.registry],
    });
    for (const reason of ['overloaded', 'deadline'] as const)
      for (const answer of ['refused', 'degraded'] as const) this.shedCounter.inc({ reason, answer }, 0);
    const inFlight = () => this.rowsInFlight;
    new Gauge({
      name: 'score_rows_in_flight',
      help: 'Candidates of the score requests admitted and not answered yet (bounded by SCORE_MAX_ROWS_IN_FLIGHT)',
      registers: [metrics.registry],
      collect() {
        this.set(inFlight());
      },
    });
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
    this.window ??= { timer: setTimeout(() => this.logWindow(), LOG_WINDOW_MS).unref(), counts: new Map() };
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
