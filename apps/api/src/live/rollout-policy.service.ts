import { Injectable, Logger } from '@nestjs/common';

import { emptyAggregate, userCluster, type ModelSpec } from '@app/mmoe/serving';
import {
  decideRollout,
  ModelRegistryService,
  POLICY_USER_BUCKETS,
  specOf,
  withPolicyDefaults,
  type ArmState,
  type PolicyDecision,
  type RolloutPolicy,
} from '@app/registry';

import type { TaskRows } from './live-metrics.rules';
import { LiveMetricsService } from './live-metrics.service';

export interface PolicyCheck {
  canaryId?: number;
  /** `none`: no canary with a policy (or no production to compare with). */
  verdict: PolicyDecision['verdict'] | 'none';
  decision?: PolicyDecision;
}

const HOUR_MS = 3_600_000;

/**
 * Applies the canary's rollout policy: both versions' labelled predictions since the version became the canary,
 * summed per user bucket, the policy's test per gated task, and the verdict carried out through the registry (actor
 * `policy`, with the evidence).
 */
@Injectable()
export class RolloutPolicyService {
  private readonly logger = new Logger(RolloutPolicyService.name);

  constructor(
    private readonly registry: ModelRegistryService,
    private readonly live: LiveMetricsService,
  ) {}

  async check(): Promise<PolicyCheck> {
    const { production, canary } = await this.registry.findServing();
    if (!production || !canary?.rolloutPolicy) return { verdict: 'none' };
    const policy = withPolicyDefaults(canary.rolloutPolicy as Partial<RolloutPolicy>);
    const since = (await this.registry.canarySince(canary.id)) ?? canary.createdAt;
    const spec = specOf(canary);
    const [canarySamples, productionSamples] = await Promise.all([
      this.live.samples(canary.id, since),
      this.live.samples(production.id, since),
    ]);
    const decision = decideRollout(policy, spec, {
      canary: armState(spec, canarySamples),
      production: armState(spec, productionSamples),
      elapsedHours: (Date.now() - since.getTime()) / HOUR_MS,
    });
    if (decision.verdict === 'wait' || decision.verdict === 'inconclusive') {
      this.logger.debug(`canary v${canary.id}: ${decision.verdict} (${decision.reason})`);
      return { canaryId: canary.id, verdict: decision.verdict, decision };
    }
    await this.registry.applyPolicyDecision(canary.id, { ...decision, verdict: decision.verdict });
    this.logger.log(
      `canary v${canary.id} ${decision.verdict === 'promote' ? 'promoted' : 'rejected'}: ${decision.reason}`,
    );
    return { canaryId: canary.id, verdict: decision.verdict, decision };
  }
}

function armState(spec: ModelSpec, samples: Record<string, TaskRows>): ArmState {
  const users = new Set<string>();
  const tasks: ArmState['tasks'] = {};
  for (const task of spec.tasks) {
    const { scores, labels, users: ids } = samples[task.name];
    const aggregate = emptyAggregate(task.type === 'binary' ? 'binary' : 'regression', POLICY_USER_BUCKETS);
    for (let i = 0; i < scores.length; i++) {
      users.add(ids[i]);
      aggregate.add(userCluster(ids[i], POLICY_USER_BUCKETS), scores[i], labels[i]);
    }
    tasks[task.name] = aggregate;
  }
  return { users: users.size, tasks };
}
