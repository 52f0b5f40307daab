import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { DeadlineExpiredError } from '@app/mmoe/serving';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { MetricsService } from '../platform/metrics.service';
import { RequestAssembler } from '../scoring/request-assembler';
import type { ServedScore } from '../scoring/score-observer.port';
import { PredictionLogWriter } from './prediction-log.writer';

type Outcome = 'scored' | 'dropped' | 'failed';

/**
 * Scores served requests again with the shadow version, in the background, and logs its predictions. offer() is
 * O(1) and never waits: a request that finds the bounded queue full is not shadowed (and counted), so a slow or
 * busy shadow costs coverage, not a growing queue. It still costs CPU and at most one pass at a time on the inference
 * threads. One request is scored at a time, each started from a fresh macrotask so that pending responses go out
 * first; its run is a background one (the pool starts it only when no served run waits), dropped when it could not
 * start within SCORE_DEADLINE_MS (the threads busy with served requests).
 */
@Injectable()
export class ShadowScorer implements OnModuleDestroy {
  private readonly logger = new Logger(ShadowScorer.name);
  private readonly queue: ServedScore[] = [];
  private draining?: Promise<void>;
  private stopped = false;
  private readonly count: (outcome: Outcome) => void;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly lifecycle: ModelLifecycleService,
    private readonly assembler: RequestAssembler,
    private readonly writer: PredictionLogWriter,
    metrics: MetricsService,
  ) {
    this.count = metrics.outcomeCounter<Outcome>(
      'shadow_requests_total',
      'Served requests offered to the shadow version: scored, dropped (queue full) or failed',
      ['scored', 'dropped', 'failed'],
    );
  }

  offer(served: ServedScore): boolean {
    if (this.stopped || this.queue.length >= this.config.SHADOW_QUEUE_SIZE) {
      this.count('dropped');
      return false;
    }
    this.queue.push(served);
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
    return true;
  }

  /** Resolves when every queued request has been shadowed (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    await this.idle();
  }

  private async drain(): Promise<void> {
    for (let served = this.queue.shift(); served; served = this.queue.shift()) {
      await new Promise((resolve) => setImmediate(resolve));
      try {
        this.count((await this.score(served)) ? 'scored' : 'dropped');
      } catch (e) {
        this.count('failed');
        this.logger.debug(`shadow scoring failed: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Scores the request as the shadow would have: its own rows (the served model's encoded rows belong to that
   * model's encoder), through the same assembler as scoring. False when the shadow left between offer and now, or
   * when the inference threads did not get to it in time.
   */
  private async score({ requestId, request }: ServedScore): Promise<boolean> {
    const lease = this.lifecycle.acquireShadow();
    if (!lease) return false;
    try {
      const { model } = lease;
      const { batch } = await this.assembler.assemble(model, request);
      let scores: Float32Array[];
      try {
        ({ scores } = await model.scorer.scoreRequest(batch, {
          deadline: performance.now() + this.config.SCORE_DEADLINE_MS,
          // Behind every served run, and not in the wait admission prices them by: a busy pool drops it instead.
          background: true,
        }));
      } catch (e) {
        if (e instanceof DeadlineExpiredError) return false;
        throw e;
      }
      this.writer.enqueue({
        loggedAt: new Date(),
        requestId,
        userId: request.userId,
        versionId: model.versionId,
        role: 'shadow',
        itemIds: request.itemIds,
        scores,
      });
      return true;
    } finally {
      lease.release();
    }
  }
}
