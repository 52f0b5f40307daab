import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { ScoreObserver, ServedScore } from '../scoring/score-observer.port';
import { PredictionLogWriter } from './prediction-log.writer';
import { ShadowScorer } from './shadow.scorer';

/**
 * Scoring's observer: decides, in O(1), whether a served response is logged and whether the shadow scores it too.
 * Production responses are sampled (PREDICTION_LOG_SAMPLE); canary responses always are, and so are those the shadow
 * scores, so that the shadow's predictions always have production's beside them, request for request.
 */
@Injectable()
export class LiveTrafficObserver implements ScoreObserver {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly lifecycle: ModelLifecycleService,
    private readonly writer: PredictionLogWriter,
    private readonly shadow: ShadowScorer,
  ) {}

  served(served: ServedScore): void {
    const { model, requestId, request, ranking } = served;
    const { shadowPercent } = this.lifecycle.current();
    const shadowed = shadowPercent > 0 && Math.random() * 100 < shadowPercent && this.shadow.offer(served);
    if (shadowed || model.role !== 'production' || Math.random() < this.config.PREDICTION_LOG_SAMPLE) {
      this.writer.enqueue({
        loggedAt: new Date(),
        requestId,
        userId: request.userId,
        versionId: model.versionId,
        role: model.role,
        itemIds: request.itemIds,
        scores: ranking.result.scores,
      });
    }
  }
}
