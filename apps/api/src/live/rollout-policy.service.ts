import { Injectable, Logger } from '@nestjs/common';

import { ConflictError } from '@app/common';
import { LiveStateRepository, ServingStatsRepository, type ServingCounts } from '@app/db';
import { decodeAggregate } from '@app/mmoe/serving';
import {
  decideRollout,
  ModelRegistryService,
  specOf,
  type ArmState,
  type PolicyDecision,
  type ServingState,
} from '@app/registry';

import { LATENCY_BUCKETS } from '../platform/metrics.service';

export interface PolicyCheck {
  canaryId?: number;
  /** `none`: no canary with a policy (or no production to compare with). */
  verdict: PolicyDecision['verdict'] | 'none';
  /** Why the check decided nothing, when it did not get as far as the test. */
  reason?: string;
  decision?: PolicyDecision;
}

const HOUR_MS = 3_600_000;

/**
 * Applies the canary's rollout policy: reads the state the live join keeps for the current canary epoch (both sides'
 * labelled predictions since the version became the canary, per user bucket) and every process's serving counts,
 * runs the policy's test, and carries out the verdict through the registry (actor `policy`, with the evidence). A
 * test that ends inconclusive is recorded once; the policy then rests until it is set again or the canary changes.
 */
@Injectable()
export class RolloutPolicyService {
  private readonly logger = new Logger(RolloutPolicyService.name);

  constructor(
    private readonly registry: ModelRegistryService,
    private readonly state: LiveStateRepository,
    private readonly serving: ServingStatsRepository,
  ) {}

  async check(): Promise<PolicyCheck> {
    const { production, canary } = await this.registry.findServing();
    const policy = canary?.rolloutPolicy;
    if (!production || !canary || !policy) return { verdict: 'none' };
    const test = await this.registry.policyTest(canary.id);
    if (!test) return { verdict: 'none' };
    const canaryId = canary.id;
    if (test.ended)
      return {
        canaryId,
        verdict: 'inconclusive',
        reason: 'the test ended inconclusive; set the policy again to resume (a larger maxEvents, if that ended it)',
      };
    const { entered } = test;
    // One round of reads, side by side: the comparison's state and both sides' serving counts.
    const [state, canaryServing, productionServing] = await Promise.all([
      this.state.canaryState(entered.id),
      this.serving.since(canaryId, 'canary', entered.createdAt),
      this.serving.since(production.id, 'production', entered.createdAt),
    ]);
    if (!state) return { canaryId, verdict: 'wait', reason: 'the live join has not started this comparison yet' };
    const { aggregates, users } = state;
    const arm = (versionId: number): ArmState => ({
      users: users.get(versionId) ?? 0,
      tasks: Object.fromEntries(
        aggregates.filter((a) => a.versionId === versionId).map((a) => [a.task, decodeAggregate(a.state)]),
      ),
    });
    const decision = decideRollout(policy, specOf(canary), {
      canary: arm(canaryId),
      production: arm(production.id),
      canaryServing: canaryServing && servingState(canaryServing),
      productionServing: productionServing && servingState(productionServing),
      elapsedHours: (Date.now() - Math.max(test.startedAt.getTime(), entered.createdAt.getTime())) / HOUR_MS,
    });
    if (decision.verdict === 'wait') {
      this.logger.debug(`canary v${canaryId}: waiting (${decision.reason})`);
      return { canaryId, verdict: 'wait', decision };
    }
    try {
      await this.registry.applyPolicyDecision(canaryId, { ...decision, verdict: decision.verdict }, test.eventId);
    } catch (e) {
      // Set again, tightened or removed, the canary moved, or another check decided first: nothing was applied.
      if (!(e instanceof ConflictError)) throw e;
      this.logger.log(`canary v${canaryId}: ${decision.verdict} not applied: ${e.message}`);
      return { canaryId, verdict: 'wait', reason: e.message, decision };
    }
    const done = { promote: 'promoted', reject: 'rejected', inconclusive: 'test ended inconclusive' }[decision.verdict];
    this.logger.log(`canary v${canaryId} ${done}: ${decision.reason}`);
    return { canaryId, verdict: decision.verdict, decision };
  }
}

/** The counts as the rules read them: a cumulative latency histogram over the scoring buckets. */
function servingState(counts: Pick<ServingCounts, 'requests' | 'errors' | 'latency'>): ServingState {
  let sum = 0;
  return {
    requests: counts.requests,
    errors: counts.errors,
    latency: { bounds: [...LATENCY_BUCKETS, Infinity], counts: counts.latency.map((n) => (sum += n)) },
  };
}
