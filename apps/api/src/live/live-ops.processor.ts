import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { LIVE_OPS_QUEUE, LiveOpsJobName } from '@app/queue';

import { PredictionLogMaintenance } from './prediction-log.maintenance';
import { RolloutPolicyService, type PolicyCheck } from './rollout-policy.service';

const PARTITIONS_EVERY_MS = 3_600_000;

/**
 * The API's periodic cluster chores as repeatable Bull jobs, like the retraining schedule: every API process
 * registers the same schedules (Bull keeps one per name and interval) and takes jobs, so each tick runs on exactly
 * one process, and the chores go on as long as one API process is up.
 */
@Processor(LIVE_OPS_QUEUE)
export class LiveOpsProcessor implements OnApplicationBootstrap {
  private readonly logger = new Logger(LiveOpsProcessor.name);

  constructor(
    @InjectQueue(LIVE_OPS_QUEUE) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly partitions: PredictionLogMaintenance,
    private readonly policy: RolloutPolicyService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Today's partition should exist before the first score is logged (the DDL is idempotent and serialised). A
    // failure is not fatal: logging drops and counts until the hourly job, or another process, has made it.
    await this.partitions
      .run()
      .catch((e: Error) => this.logger.warn(`prediction log partitions not ensured at boot: ${e.message}`));
    await this.schedule(LiveOpsJobName.PredictionLogPartitions, PARTITIONS_EVERY_MS);
    await this.schedule(LiveOpsJobName.RolloutPolicy, this.config.ROLLOUT_POLICY_CHECK_SECONDS * 1000);
  }

  @Process(LiveOpsJobName.RolloutPolicy)
  checkPolicy(): Promise<PolicyCheck> {
    return this.policy.check();
  }

  @Process(LiveOpsJobName.PredictionLogPartitions)
  maintainPartitions(): Promise<{ created: string[]; dropped: string[] }> {
    return this.partitions.run();
  }

  /** One repeatable job per name: a schedule left by a process with another interval is replaced by this one. */
  private async schedule(name: LiveOpsJobName, every: number): Promise<void> {
    for (const job of await this.queue.getRepeatableJobs())
      if (job.name === name && Number(job.every) !== every) await this.queue.removeRepeatableByKey(job.key);
    await this.queue.add(name, {}, { repeat: { every }, jobId: name });
    this.logger.debug(`${name} every ${every / 1000} s`);
  }
}
