import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { PredictionLogRepository } from '@app/db';

/** Partitions made ahead of time: a missing day partition would make every insert of that day fail. */
const DAYS_AHEAD = 3;
const DAY_MS = 86_400_000;

/** Keeps the prediction log's day partitions: today and the next days exist, days past the retention are dropped. */
@Injectable()
export class PredictionLogMaintenance {
  private readonly logger = new Logger(PredictionLogMaintenance.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: PredictionLogRepository,
  ) {}

  async run(now = new Date()): Promise<{ created: string[]; dropped: string[] }> {
    const dropBefore = new Date(now.getTime() - this.config.PREDICTION_LOG_RETENTION_DAYS * DAY_MS);
    const result = await this.log.maintainPartitions(now, DAYS_AHEAD, dropBefore);
    if (result.created.length + result.dropped.length > 0)
      this.logger.log(
        `prediction log partitions: created ${result.created.join(', ') || 'none'}; dropped ${result.dropped.join(', ') || 'none'}`,
      );
    return result;
  }
}
