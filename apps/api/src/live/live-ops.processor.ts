import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { LIVE_OPS_QUEUE, liveOpsJobData, LiveOpsJobName, RepeatableJobRunner } from '@app/queue';

import { LiveJoinService } from './live-join.service';
import { PredictionLogMaintenance } from './prediction-log.maintenance';
import { RolloutPolicyService } from './rollout-policy.service';

const PARTITIONS_EVERY_MS = 3_600_000;

/**
 * The API's periodic cluster chores, as repeatable jobs of the runner: each tick runs on one API process, and the
 * chores go on as long as one API process is up.
 */
@Injectable()
export class LiveOpsProcessor implements OnApplicationBootstrap {
  private readonly logger = new Logger(LiveOpsProcessor.name);

  constructor(
    @InjectQueue(LIVE_OPS_QUEUE) queue: Queue,
    @Inject(APP_CONFIG) config: AppConfig,
    runner: RepeatableJobRunner,
    private readonly partitions: PredictionLogMaintenance,
    policy: RolloutPolicyService,
    join: LiveJoinService,
  ) {
    const job = { queue, data: liveOpsJobData };
    runner.register({
      ...job,
      name: LiveOpsJobName.RolloutPolicy,
      schedule: { every: config.ROLLOUT_POLICY_CHECK_SECONDS * 1000, data: {} },
      run: () => policy.check(),
    });
    runner.register({
      ...job,
      name: LiveOpsJobName.PredictionLogPartitions,
      schedule: { every: PARTITIONS_EVERY_MS, data: {} },
      run: () => partitions.run(),
    });
    runner.register({
      ...job,
      name: LiveOpsJobName.LiveJoin,
      schedule: { every: config.LIVE_AGGREGATION_SECONDS * 1000, data: {} },
      run: () => join.run(),
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    // Today's partition should exist before the first score is logged (the DDL is idempotent and serialised). A
    // failure is not fatal: logging drops and counts until the hourly job, or another process, has made it.
    await this.partitions
      .run()
      .catch((e: Error) => this.logger.warn(`prediction log partitions not ensured at boot: ${e.message}`));
  }
}
