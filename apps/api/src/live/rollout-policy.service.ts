import { Injectable, Logger } from '@nestjs/common';

import { decideRollout, ModelRegistryService, specOf, type PolicyDecision, type RolloutPolicy } from '@app/registry';

import { LiveMetricsService } from './live-metrics.service';

export interface PolicyCheck {
  canaryId?: number;
  /** `none`: no canary with a policy (or no production to compare with). */
  verdict: PolicyDecision['verdict'] | 'none';
  decision?: PolicyDecision;
}

/**
 * Applies the canary's rollout policy: both versions' labelled predictions since the version became the canary,
 * DeLong's test per gated task, and the verdict carried out through the registry (actor `policy`, with the evidence).
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
    const policy = canary.rolloutPolicy as unknown as RolloutPolicy;
    const since = (await this.registry.canarySince(canary.id)) ?? canary.createdAt;
    const [canarySamples, productionSamples] = await Promise.all([
      this.live.samples(canary.id, since),
      this.live.samples(production.id, since),
    ]);
    const decision = decideRollout(policy, specOf(canary), canarySamples, productionSamples);
    if (decision.verdict === 'wait') {
      this.logger.debug(`canary v${canary.id}: waiting (${decision.reason})`);
      return { canaryId: canary.id, verdict: 'wait', decision };
    }
    await this.registry.applyPolicyDecision(canary.id, { ...decision, verdict: decision.verdict });
    this.logger.log(
      `canary v${canary.id} ${decision.verdict === 'promote' ? 'promoted' : 'rejected'}: ${decision.reason}`,
    );
    return { canaryId: canary.id, verdict: decision.verdict, decision };
  }
}
