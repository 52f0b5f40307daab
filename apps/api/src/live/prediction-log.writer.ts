import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { PredictionCopyText, PredictionLogRepository, type PredictionColumns } from '@app/db';

import { MetricsService } from '../platform/metrics.service';

/**
 * One served response of one version, as queued: the response's own columns, not copies; its rows are encoded only
 * when it is written, off the request path.
 */
export type ServedPredictions = PredictionColumns & {
  /** Per task, in the version's spec order (the order of the scores in the log), a score per item (itemIds order). */
  scores: readonly Float32Array[];
};

type Outcome = 'written' | 'dropped' | 'failed';

/**
 * Writes served predictions to the prediction log off the request path: enqueue() only appends a reference to a
 * bounded in-memory buffer (rows are counted, not built); a timer, or a full batch, turns the buffer into one COPY
 * at a time. A response that does not fit is dropped and counted rather than blocking the score or growing memory,
 * and so is a batch whose COPY fails: the log is a sample, never worth an outage. Memory is bounded by the buffer
 * plus the one batch being written.
 */
@Injectable()
export class PredictionLogWriter implements OnModuleDestroy {
  private readonly logger = new Logger(PredictionLogWriter.name);
  private pending: ServedPredictions[] = [];
  private pendingRows = 0;
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private lastFailureLog = 0;
  /** The batch being written, encoded: one COPY at a time, so one buffer serves every batch. */
  private text = new PredictionCopyText();
  private readonly count: (outcome: Outcome, rows: number) => void;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: PredictionLogRepository,
    metrics: MetricsService,
  ) {
    this.count = metrics.outcomeCounter<Outcome>(
      'prediction_log_rows_total',
      'Served predictions (one per request, item and version) written to the log, dropped (buffer full) or failed',
      ['written', 'dropped', 'failed'],
    );
    metrics.scrapedGauge(
      'prediction_log_buffered_rows',
      'Served predictions waiting in memory to be written',
      () => this.pendingRows,
    );
  }

  /** O(1): queues the response, or drops it when the buffer is full. Returns whether it was queued. */
  enqueue(served: ServedPredictions): boolean {
    const rows = served.itemIds.length;
    if (this.pendingRows + rows > this.config.PREDICTION_LOG_BUFFER_ROWS) {
      this.count('dropped', rows);
      return false;
    }
    this.pending.push(served);
    this.pendingRows += rows;
    if (this.pendingRows >= this.config.PREDICTION_LOG_BATCH_ROWS) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.config.PREDICTION_LOG_FLUSH_MS).unref();
    return true;
  }

  /** Writes everything queued so far; resolves when it is in Postgres (or counted as failed). Never rejects. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    this.flushing = this.writeAll().finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  async onModuleDestroy(): Promise<void> {
    await this.flush();
  }

  private async writeAll(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.takeBatch();
      const rows = batch.reduce((n, served) => n + served.itemIds.length, 0);
      try {
        await this.encodeByResponse(batch);
        await this.log.insertEncoded(this.text.contents());
        this.count('written', rows);
      } catch (e) {
        // A COPY that failed may have left writes of the buffer queued on its socket: the next batch gets another.
        this.text = new PredictionCopyText();
        this.count('failed', rows);
        // One line a minute at most: a database outage would otherwise log once per batch.
        if (Date.now() - this.lastFailureLog > 60_000) {
          this.lastFailureLog = Date.now();
          this.logger.warn(`prediction log batch of ${rows} rows not written: ${(e as Error).message}`);
        }
      }
    }
  }

  /** Whole responses up to the batch size (at least one). */
  private takeBatch(): ServedPredictions[] {
    let taken = 0;
    let rows = 0;
    while (taken < this.pending.length && (taken === 0 || rows < this.config.PREDICTION_LOG_BATCH_ROWS))
      rows += this.pending[taken++].itemIds.length;
    const batch = this.pending.slice(0, taken);
    this.pending = this.pending.slice(taken);
    this.pendingRows -= rows;
    return batch;
  }

  /**
   * The batch's rows as COPY takes them, encoded one response at a time with the event loop let go in between: a
   * whole 5,000-row batch (the default) in one piece held it for 5-7 ms, which every request in flight waited out.
   */
  private async encodeByResponse(batch: readonly ServedPredictions[]): Promise<void> {
    this.text.clear();
    for (let i = 0; i < batch.length; i++) {
      if (i > 0) await nextMacrotask();
      this.text.append(batch[i]);
    }
  }
}
