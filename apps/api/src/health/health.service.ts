import { Injectable } from '@nestjs/common';

import { UnavailableError } from '@app/common';
import { ReadReplica } from '@app/db';

import { ModelLifecycleService } from '../models/model-lifecycle.service';
import type { CheckStatus, ReadinessDto } from './dto/readiness.dto';
import { HealthRepository } from './health.repository';

/** A probe must answer well within the orchestrator's timeout, even when a store hangs instead of refusing. */
const CHECK_TIMEOUT_MS = 1000;

@Injectable()
export class HealthService {
  constructor(
    private readonly repository: HealthRepository,
    private readonly lifecycle: ModelLifecycleService,
    private readonly replica: ReadReplica,
  ) {}

  /**
   * Ready to take traffic: both stores answer and a production model is loaded. Without Redis the process still
   * scores everything (features from Postgres): 200 `degraded`; likewise while a configured read replica is not used
   * (down or lagging: its reads go to the primary). Without Postgres or a model, 503 with every check.
   */
  async ready(): Promise<ReadinessDto> {
    const [postgres, redis] = await Promise.all([
      probe(() => this.repository.pingPostgres()),
      probe(() => this.repository.pingRedis()),
    ]);
    const model: CheckStatus = this.lifecycle.current().production ? 'up' : 'down';
    const replica = this.replica.state;
    const checks = { postgres, redis, model, ...(replica !== 'none' && { replica }) };
    const serving = postgres === 'up' && model === 'up';
    const whole = redis === 'up' && replica !== 'down';
    const report: ReadinessDto = { status: !serving ? 'unavailable' : whole ? 'ok' : 'degraded', checks };
    if (!serving) throw new UnavailableError('not ready', { details: report });
    return report;
  }
}

async function probe(check: () => Promise<void>): Promise<CheckStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS)),
  );
  try {
    await Promise.race([check(), timeout]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}
