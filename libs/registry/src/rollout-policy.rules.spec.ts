import { InvalidFieldsError } from '@app/common';
import {
  BinaryAggregate,
  CanaryTraffic,
  parseModelSpec,
  RegressionAggregate,
  Rng,
  userCluster,
  type SimulatedModel,
} from '@app/mmoe';

import {
  checkRolloutPolicy,
  decideRollout,
  DEFAULT_ROLLOUT_POLICY,
  POLICY_USER_BUCKETS,
  readRolloutPolicy,
  type ArmState,
  type RolloutPolicy,
  type ServingState,
} from './rollout-policy.rules';

const SPEC = parseModelSpec({
  features: [{ name: 'genre', type: 'categorical' }],
  tasks: [
    { name: 'click', label: 'clicked', type: 'binary' },
    { name: 'watch', label: 'seconds', type: 'regression' },
  ],
  model: { expertUnits: [4] },
});

const POLICY: RolloutPolicy = { ...DEFAULT_ROLLOUT_POLICY, minEvents: 300, minUsers: 50, tolerance: 0.01 };
const PRODUCTION: SimulatedModel = { userError: 0.5, noise: 1 };
/** Users with strong random effects (their own base rate and taste), split 50/50 as the API splits them. */
const WORLD = { canaryPercent: 50, userSd: 1.2, tasteSd: 1, itemsPerRequest: 10 };

/** Traffic of a canary split, looked at every `every` labelled predictions until `decide` returns a verdict. */
function rollout(
  o: { users: number; seed: number; canary: SimulatedModel; events: number; every?: number },
  decide: (canary: ArmState, production: ArmState) => string | undefined,
): string | undefined {
  const traffic = new CanaryTraffic(
    { ...WORLD, users: o.users, seed: o.seed },
    { production: PRODUCTION, canary: o.canary },
  );
  const clusters = traffic.userIds.map((id) => userCluster(id, POLICY_USER_BUCKETS));
  const arms = {
    canary: { users: new Set<number>(), click: new BinaryAggregate(POLICY_USER_BUCKETS) },
    production: { users: new Set<number>(), click: new BinaryAggregate(POLICY_USER_BUCKETS) },
  };
  const state = (arm: typeof arms.canary): ArmState => ({ users: arm.users.size, tasks: { click: arm.click } });
  for (let events = 0; events < o.events;) {
    const user = traffic.next();
    const arm = traffic.onCanary[user] ? arms.canary : arms.production;
    arm.users.add(user);
    for (let j = 0; j < traffic.scores.length; j++) arm.click.add(clusters[user], traffic.scores[j], traffic.labels[j]);
    events += traffic.scores.length;
    if (events % (o.every ?? o.events) === 0) {
      const verdict = decide(state(arms.canary), state(arms.production));
      if (verdict) return verdict;
    }
  }
  return undefined;
}

const inputs = (canary: ArmState, production: ArmState, elapsedHours = 1) => ({ canary, production, elapsedHours });

describe('rollout policy rules', () => {
  it('never rejects an identical canary, looking at every tick, with few users and strong user effects', () => {
    const verdicts = Array.from({ length: 30 }, (_, r) =>
      rollout({ users: 300, seed: 100 + r, canary: PRODUCTION, events: 15_000, every: 1000 }, (canary, production) => {
        const { verdict } = decideRollout(POLICY, SPEC, inputs(canary, production));
        return verdict === 'wait' ? undefined : verdict;
      }),
    );
    // The test the policy used before (independent impressions, a fixed test at every look) rejects ~1 in 4 of these.
    expect(verdicts.filter((v) => v === 'reject').length).toBeLessThanOrEqual(1);
  });

  it('rejects a clearly worse canary, with the evidence of a test across users', () => {
    const worse = { userError: 1.5, noise: 3 };
    let evidence: ReturnType<typeof decideRollout> | undefined;
    const verdict = rollout(
      { users: 2000, seed: 1, canary: worse, events: 40_000, every: 2000 },
      (canary, production) => {
        evidence = decideRollout(POLICY, SPEC, inputs(canary, production));
        return evidence.verdict === 'wait' ? undefined : evidence.verdict;
      },
    );
    expect(verdict).toBe('reject');
    expect(evidence).toMatchObject({ test: 'delong-clustered-sequential', reason: 'worse beyond tolerance on click' });
    const [click] = evidence!.tasks;
    expect(click.upperBound!).toBeLessThan(-POLICY.tolerance);
    expect(click.canary.auc!).toBeLessThan(click.production.auc!);
    // Users' impressions are correlated: the variance across users is larger than DeLong's.
    expect(click.canary.designEffect!).toBeGreaterThan(1.2);
    expect(click.canary.effectiveCount!).toBeLessThan(click.canary.count);
    expect(click.canary.clusters).toBeGreaterThan(30);
    expect(evidence!.users.canary).toBeGreaterThan(POLICY.minUsers);
  });

  it('promotes a better canary', () => {
    const better = { userError: 0.2, noise: 0.3 };
    const verdict = rollout(
      { users: 2000, seed: 2, canary: better, events: 40_000, every: 2000 },
      (canary, production) => {
        const { verdict } = decideRollout(POLICY, SPEC, inputs(canary, production));
        return verdict === 'wait' ? undefined : verdict;
      },
    );
    expect(verdict).toBe('promote');
  });

  it("waits while one user carries a side's positives, however well or badly they are scored", () => {
    const rng = new Rng(11);
    // 200 users a side, 10 impressions each; production's 140 positives spread over its users, the canary's 3 all of
    // one user: that bucket's term of the variance is 0, and the AUC looked certain at 0.998 (or 0.001).
    const arm = (positives: (user: number, j: number) => boolean, score: (label: number) => number): ArmState => {
      const click = new BinaryAggregate(POLICY_USER_BUCKETS);
      for (let user = 0; user < 200; user++)
        for (let j = 0; j < 10; j++) {
          const label = positives(user, j) ? 1 : 0;
          click.add(userCluster(`u${user}`, POLICY_USER_BUCKETS), score(label), label);
        }
      return { users: 200, tasks: { click } };
    };
    const production = arm(
      (user, j) => (user * 10 + j) % 14 === 0,
      (label) => 0.3 + 0.2 * label + 0.3 * rng.next(),
    );
    const rare = { ...POLICY, minEvents: 1000 };
    for (const positiveScore of [0.99, 0.01]) {
      const canary = arm(
        (user, j) => user === 7 && j < 3,
        (label) => (label ? positiveScore : 0.1 + 0.8 * rng.next()),
      );
      const decision = decideRollout(rare, SPEC, inputs(canary, production));
      expect(decision).toMatchObject({ verdict: 'wait' });
      expect(decision.tasks[0].reason).toBe(
        "the canary's positives lie in 1 user buckets, fewer than the 10 its variance needs",
      );
    }
  });

  it('waits for minEvents and minUsers on both sides, then ends inconclusive at maxHours or maxEvents', () => {
    let last: ReturnType<typeof decideRollout> | undefined;
    rollout({ users: 60, seed: 3, canary: PRODUCTION, events: 2000 }, (canary, production) => {
      last = decideRollout({ ...POLICY, minEvents: 5000 }, SPEC, inputs(canary, production));
      return undefined;
    });
    expect(last!.verdict).toBe('wait');
    expect(last!.reason).toMatch(/^\d+ of 50 users on the smaller side$/);
    expect(last!.tasks[0]).toMatchObject({ verdict: 'wait', reason: 'too few users' });

    const decide = (policy: RolloutPolicy, hours: number) => {
      let decision: ReturnType<typeof decideRollout> | undefined;
      rollout({ users: 300, seed: 4, canary: PRODUCTION, events: 3000 }, (canary, production) => {
        decision = decideRollout(policy, SPEC, inputs(canary, production, hours));
        return undefined;
      });
      return decision!;
    };
    expect(decide({ ...POLICY, minEvents: 5000 }, 1)).toMatchObject({
      verdict: 'wait',
      reason: expect.stringMatching(/^click: \d+ of 5000 labelled events$/),
    });
    expect(decide(POLICY, 1).verdict).toBe('wait');
    expect(decide(POLICY, POLICY.maxHours)).toMatchObject({
      verdict: 'inconclusive',
      reason: expect.stringMatching(/^no decision after 168 h \(click: inconclusive so far\)$/),
    });
    expect(decide({ ...POLICY, maxEvents: 1000 }, 1).reason).toMatch(
      /^no decision after 1000 labelled canary predictions/,
    );
  });

  it('shares 1 − confidence among the tests that can reject; promotion keeps the full level', () => {
    const bounds = (policy: RolloutPolicy) => {
      let decision: ReturnType<typeof decideRollout> | undefined;
      rollout({ users: 500, seed: 9, canary: PRODUCTION, events: 5000 }, (canary, production) => {
        decision = decideRollout(policy, SPEC, inputs(canary, production));
        return undefined;
      });
      return decision!.tasks[0];
    };
    const alone = bounds(POLICY);
    const guarded = bounds({ ...POLICY, guardrails: { errorRate: 0.01, latencyP99Ms: 50, regressionError: 0.1 } });
    expect(guarded.lowerBound).toBe(alone.lowerBound);
    expect(guarded.upperBound!).toBeGreaterThan(alone.upperBound!);
  });

  describe('guardrails', () => {
    /** `users` users, each with 20 predictions of `predicted` against a label rate of 0.2. */
    function calibrated(predicted: number, users = 200, seed = 5): ArmState {
      const rng = new Rng(seed);
      const click = new BinaryAggregate(POLICY_USER_BUCKETS);
      const watch = new RegressionAggregate(POLICY_USER_BUCKETS);
      for (let u = 0; u < users; u++) {
        const k = userCluster(`u${u}`, POLICY_USER_BUCKETS);
        for (let i = 0; i < 20; i++) {
          click.add(k, predicted * (0.5 + rng.next()), rng.next() < 0.2 ? 1 : 0);
          watch.add(k, 10 + rng.gaussian() * (predicted > 0.3 ? 3 : 1), 10 + rng.gaussian());
        }
      }
      return { users, tasks: { click, watch } };
    }
    const guarded: RolloutPolicy = {
      ...POLICY,
      minEvents: 100_000,
      guardrails: { calibration: 0.2, regressionError: 0.2, errorRate: 0.01, latencyP99Ms: 50 },
    };
    const serving = (requests: number, errors: number, slowerThan50ms: number): ServingState => {
      const bounds = [0.01, 0.025, 0.05, 0.1, Infinity];
      const counts = [requests * 0.5, requests * 0.8, requests - slowerThan50ms, requests, requests];
      return { requests, errors, latency: { bounds, counts } };
    };

    it('passes a canary within every bound, whose evidence holds each estimate', () => {
      const decision = decideRollout(guarded, SPEC, {
        ...inputs(calibrated(0.2), calibrated(0.2, 200, 6)),
        canaryServing: serving(5000, 10, 20),
      });
      expect(decision.verdict).toBe('wait');
      expect(decision.guardrails.map((g) => [g.guardrail, g.breached])).toEqual([
        ['calibration', false],
        ['regressionError', false],
        ['errorRate', false],
        ['latencyP99Ms', false],
      ]);
      const [calibration, , errors] = decision.guardrails;
      expect(calibration.estimate!).toBeGreaterThan(0.8);
      expect(calibration.estimate!).toBeLessThan(1.25);
      expect(errors).toMatchObject({ estimate: 10 / 5000, count: 5000 });
    });

    it('rejects at once, before enough users for AUC, a canary that fails or is slow', () => {
      const few = calibrated(0.2, 10);
      const failing = decideRollout(guarded, SPEC, { ...inputs(few, few), canaryServing: serving(3000, 150, 0) });
      expect(failing.verdict).toBe('reject');
      expect(failing.reason).toBe('guardrail breached: 150 of 3000 requests (5.00 %) above 1.00 %');
      // Measured against production's: an outage failing both sides is not the canary's fault.
      const outage = decideRollout(guarded, SPEC, {
        ...inputs(few, few),
        canaryServing: serving(3000, 150, 0),
        productionServing: serving(3000, 140, 0),
      });
      expect(outage.verdict).toBe('wait');
      expect(outage.guardrails.find((g) => g.guardrail === 'errorRate')).toMatchObject({ production: 140 / 3000 });
      const slow = decideRollout(guarded, SPEC, { ...inputs(few, few), canaryServing: serving(3000, 0, 300) });
      expect(slow.verdict).toBe('reject');
      expect(slow.guardrails.find((g) => g.guardrail === 'latencyP99Ms')).toMatchObject({
        breached: true,
        estimate: expect.any(Number),
      });
      // A handful of failures is not enough evidence, every one of a few requests failing or slow included (a warm-up).
      expect(decideRollout(guarded, SPEC, { ...inputs(few, few), canaryServing: serving(20, 2, 0) }).verdict).toBe(
        'wait',
      );
      for (const warmUp of [serving(3, 3, 0), serving(99, 99, 99)])
        expect(decideRollout(guarded, SPEC, { ...inputs(few, few), canaryServing: warmUp }).verdict).toBe('wait');
      expect(decideRollout(guarded, SPEC, { ...inputs(few, few), canaryServing: serving(100, 100, 0) }).verdict).toBe(
        'reject',
      );
    });

    it('rejects a miscalibrated canary, and one whose regression error is much larger', () => {
      const decision = decideRollout(guarded, SPEC, inputs(calibrated(0.4), calibrated(0.2, 200, 6)));
      expect(decision.verdict).toBe('reject');
      const breached = decision.guardrails.filter((g) => g.breached).map((g) => g.guardrail);
      expect(breached).toEqual(['calibration', 'regressionError']);
      expect(decision.guardrails[0].estimate!).toBeGreaterThan(1.5);
      expect(decision.guardrails[0].production!).toBeLessThan(1.25);
    });
  });

  it('reads a stored maxEvents: null as no maximum and tasks: {} as every binary task, never as a decision', () => {
    const stored = { confidence: 0.95, minEvents: 300, tolerance: 0.01, maxEvents: null, tasks: {} };
    const policy = readRolloutPolicy(stored);
    expect(policy).toEqual({ ...DEFAULT_ROLLOUT_POLICY, minEvents: 300 });
    // Few users, nothing labelled: as read, the policy waits (as stored, it ended inconclusive or promoted at once).
    const empty = (): ArmState => ({ users: 0, tasks: {} });
    expect(decideRollout(policy, SPEC, inputs(empty(), empty())).verdict).toBe('wait');
    const many = (): ArmState => ({ users: 1000, tasks: {} });
    expect(decideRollout(policy, SPEC, inputs(many(), many())).verdict).toBe('wait');
    // A policy that gates on no task (a spec without a binary one) never promotes.
    expect(decideRollout({ ...policy, tasks: {} }, SPEC, inputs(many(), many())).verdict).toBe('wait');
  });

  it('400s a policy naming a task that is not binary, or not of the model', () => {
    try {
      checkRolloutPolicy(SPEC, { ...POLICY, tasks: { watch: {}, click: { minEvents: 5 }, share: {} } });
      throw new Error('expected a 400');
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidFieldsError);
      const fields = (e as InvalidFieldsError).errors.map((x) => x.field);
      expect(fields).toEqual(['tasks.watch', 'tasks.share']);
    }
    const binaryOnly = parseModelSpec({
      features: [{ name: 'genre', type: 'categorical' }],
      tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
      model: { expertUnits: [4] },
    });
    expect(() => checkRolloutPolicy(binaryOnly, { ...POLICY, guardrails: { regressionError: 0.1 } })).toThrow(
      InvalidFieldsError,
    );
  });

  it('400s a maxEvents below what a gated task needs before any decision: the test could only end inconclusive', () => {
    const fields = (policy: RolloutPolicy) => {
      try {
        checkRolloutPolicy(SPEC, policy);
        return [];
      } catch (e) {
        return (e as InvalidFieldsError).errors.map((x) => x.field);
      }
    };
    expect(fields({ ...POLICY, maxEvents: 299 })).toEqual(['maxEvents']);
    expect(fields({ ...POLICY, maxEvents: 300 })).toEqual([]);
    expect(fields({ ...POLICY, maxEvents: 400, tasks: { click: { minEvents: 500 } } })).toEqual(['maxEvents']);
    expect(fields({ ...POLICY, maxEvents: 400, tasks: { click: { minEvents: 50 } } })).toEqual([]);
    // Without a spec yet (no production for a cadence to train): what needs none is still checked.
    expect(() => checkRolloutPolicy(undefined, { ...POLICY, maxEvents: 299 })).toThrow(InvalidFieldsError);
    expect(checkRolloutPolicy(undefined, { ...POLICY, tasks: { any: {} } })).toMatchObject({ tasks: { any: {} } });
  });
});
