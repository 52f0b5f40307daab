import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { LiveStateRepository, PredictionLogRepository, ServingStatsRepository } from '@app/db';

import { AGGREGATE_KEPT_MS } from './live-metrics.rules';

/** Partitions made ahead of time: a missing day partition would make every insert of that day fail. */
const DAYS_AHEAD = 3;
const DAY_MS = 86_400_000;

/**
 * Keeps the prediction log's day partitions (today and the next days exist, days past the retention are dropped) and
 * prunes the live state with it: labelled predictions and serving counts past the retention, aggregates past the
 * longest window each granularity answers.
 */
@Injectable()
export class PredictionLogMaintenance {
  private readonly logger = new Logger(PredictionLogMaintenance.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: PredictionLogRepository,
    private readonly state: LiveStateRepository,
    private readonly serving: ServingStatsRepository,
  ) {}

  async run(now = new Date()): Promise<{ created: string[]; dropped: string[]; keptFrom: Date }> {
    const dropBefore = new Date(now.getTime() - this.config.PREDICTION_LOG_RETENTION_DAYS * DAY_MS);
    const result = await this.log.maintainPartitions(now, DAYS_AHEAD, dropBefore);
    const kept = (ms: number) => new Date(now.getTime() - ms);
    // Labelled predictions go with their day's partition, not before: an event for a pair still in the log, finding no
    // labelled row to merge into, would count its prediction a second time.
    await this.state.prune(
      { minute: kept(AGGREGATE_KEPT_MS.minute), hour: kept(AGGREGATE_KEPT_MS.hour), day: kept(AGGREGATE_KEPT_MS.day) },
      result.keptFrom,
    );
    await this.serving.prune(dropBefore);
    if (result.created.length + result.dropped.length > 0)
      this.logger.log(
        `prediction log partitions: created ${result.created.join(', ') || 'none'}; dropped ${result.dropped.join(', ') || 'none'}`,
      );
    return result;
  }
}
