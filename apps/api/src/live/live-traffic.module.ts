import { Module } from '@nestjs/common';

import { PredictionLogModule } from '@app/db';
import { QueueModule } from '@app/queue';

import { ModelsModule } from '../models/models.module';
import { PlatformModule } from '../platform/platform.module';
import { RequestAssemblyModule } from '../scoring/request-assembly.module';
import { SCORE_OBSERVER } from '../scoring/score-observer.port';
import { LiveJoinService } from './live-join.service';
import { LiveMetricsGauges } from './live-metrics.gauges';
import { LiveMetricsService } from './live-metrics.service';
import { LiveOpsProcessor } from './live-ops.processor';
import { LiveTrafficObserver } from './live-traffic.observer';
import { PredictionLogMaintenance } from './prediction-log.maintenance';
import { PredictionLogWriter } from './prediction-log.writer';
import { RolloutPolicyService } from './rollout-policy.service';
import { ServingStatsPublisher } from './serving-stats.publisher';
import { ShadowScorer } from './shadow.scorer';

/**
 * Learning from live traffic: served predictions logged (scoring's observer), shadow scoring, the live join that
 * keeps online metrics as events come back, and the rollout policy that promotes or rejects the canary on them.
 */
@Module({
  imports: [PredictionLogModule, QueueModule, ModelsModule, PlatformModule, RequestAssemblyModule],
  providers: [
    PredictionLogWriter,
    ShadowScorer,
    LiveTrafficObserver,
    { provide: SCORE_OBSERVER, useExisting: LiveTrafficObserver },
    LiveMetricsService,
    LiveMetricsGauges,
    RolloutPolicyService,
    PredictionLogMaintenance,
    LiveJoinService,
    ServingStatsPublisher,
    LiveOpsProcessor,
  ],
  exports: [SCORE_OBSERVER, PredictionLogWriter, ShadowScorer, LiveMetricsService],
})
export class LiveTrafficModule {}
