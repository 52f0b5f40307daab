/**
 * The rollout policy's statistics on simulated canary splits whose truth is known: users with strong random effects
 * (their own base rate and taste), a canary identical to production (A/A), or 0.02 AUC worse, or 0.02 better, and
 * the policy run at every look as traffic arrives. Side by side, the test the policy used before (DeLong's variance
 * as if impressions were independent, a fixed-sample one-sided test repeated at every look), the same test with the
 * variance taken across users, and the policy's test (clustered variance and a confidence sequence — the same
 * decideRollout() the API runs, on the same per-user-bucket aggregates).
 *
 *   npm run bench:rollout [-- --quick] [-- --rollouts 1000]
 */
import { loadavg } from 'node:os';

import {
  BinaryAggregate,
  CanaryTraffic,
  clusteredAuc,
  modelWithAucShift,
  normalCdf,
  parseModelSpec,
  populationAuc,
  userCluster,
  type ClusteredAuc,
  type SimulatedModel,
} from '@app/mmoe';
import { decideRollout, DEFAULT_ROLLOUT_POLICY, POLICY_USER_BUCKETS, type RolloutPolicy } from '@app/registry';

import { cpuModel, formatCount, hasFlag, log, markdownTable, positiveIntFlag, quantile, stopwatch } from './bench.util';

const QUICK = hasFlag('quick');
const USER_COUNTS = QUICK ? [300, 10_000] : [100, 300, 1000, 10_000];
/** A/A rollouts per number of users (the false-decision rate needs many); fewer for the power runs. */
const AA_ROLLOUTS = positiveIntFlag('rollouts', QUICK ? 200 : 1000);
const POWER_ROLLOUTS = Math.max(50, Math.round(AA_ROLLOUTS / 4));
/** Labelled predictions (both arms) between two looks, and at most per rollout. */
const EVENTS_PER_LOOK = 1000;
const MAX_EVENTS = QUICK ? 40_000 : 100_000;
const SHIFT = 0.02;

const WORLD = { userSd: 1.2, tasteSd: 1.0, canaryPercent: 50, itemsPerRequest: 10 };
const PRODUCTION: SimulatedModel = { userError: 0.5, noise: 1.0 };
/** The policy of the experiment, and the policy's defaults for what it lacked. */
const POLICY: RolloutPolicy = {
  ...DEFAULT_ROLLOUT_POLICY,
  minEvents: 300,
  tolerance: 0.01,
  confidence: 0.95,
  maxHours: Infinity,
};
const SPEC = parseModelSpec({
  features: [{ name: 'f', type: 'numeric' }],
  tasks: [{ name: 'click', label: 'click', type: 'binary' }],
  model: { expertUnits: [4] },
});

type Verdict = 'promote' | 'reject' | 'inconclusive';
type Decide = (canary: ClusteredAuc, production: ClusteredAuc, state: RolloutState) => Verdict | undefined;

interface RolloutState {
  canary: BinaryAggregate;
  production: BinaryAggregate;
  users: { canary: number; production: number };
}

/** A fixed-sample one-sided test at the policy's confidence, repeated at every look, with the given variance. */
function fixedTest(variance: (a: ClusteredAuc) => number): Decide {
  return (canary, production) => {
    if (Math.min(canary.positives + canary.negatives, production.positives + production.negatives) < POLICY.minEvents)
      return undefined;
    const se = Math.sqrt(variance(canary) + variance(production));
    const z = (canary.auc - production.auc + POLICY.tolerance) / se;
    if (!Number.isFinite(z)) return undefined;
    const alpha = 1 - POLICY.confidence;
    if (normalCdf(z) < alpha) return 'reject';
    if (1 - normalCdf(z) < alpha) return 'promote';
    return undefined;
  };
}

function policyTest(policy: RolloutPolicy): Decide {
  return (_canary, _production, state) => {
    const decision = decideRollout(policy, SPEC, {
      canary: { users: state.users.canary, tasks: { click: state.canary } },
      production: { users: state.users.production, tasks: { click: state.production } },
      elapsedHours: 0,
    });
    return decision.verdict === 'wait' ? undefined : decision.verdict;
  };
}

const METHODS: { name: string; decide: Decide }[] = [
  { name: 'before: DeLong as if independent, fixed test at every look', decide: fixedTest((a) => a.iidVariance) },
  { name: 'variance across users, fixed test at every look', decide: fixedTest((a) => a.variance) },
  { name: `policy: across users, confidence sequence, minUsers ${POLICY.minUsers}`, decide: policyTest(POLICY) },
  { name: 'policy without minUsers', decide: policyTest({ ...POLICY, minUsers: 2 }) },
];

interface Outcome {
  verdict: Verdict;
  events: number;
}

/** One rollout: traffic until every method has decided or MAX_EVENTS, each method looking every EVENTS_PER_LOOK. */
function rollout(users: number, seed: number, canaryModel: SimulatedModel): Outcome[] {
  const traffic = new CanaryTraffic({ ...WORLD, users, seed }, { production: PRODUCTION, canary: canaryModel });
  const clusters = Int32Array.from(traffic.userIds, (id) => userCluster(id, POLICY_USER_BUCKETS));
  const seen = new Uint8Array(users);
  const state: RolloutState = {
    canary: new BinaryAggregate(POLICY_USER_BUCKETS),
    production: new BinaryAggregate(POLICY_USER_BUCKETS),
    users: { canary: 0, production: 0 },
  };
  const outcomes: (Outcome | undefined)[] = METHODS.map(() => undefined);
  let events = 0;
  let nextLook = EVENTS_PER_LOOK;
  while (events < MAX_EVENTS && outcomes.some((o) => o === undefined)) {
    const user = traffic.next();
    const canary = traffic.onCanary[user] === 1;
    const arm = canary ? state.canary : state.production;
    if (!seen[user]) {
      seen[user] = 1;
      state.users[canary ? 'canary' : 'production']++;
    }
    for (let j = 0; j < traffic.scores.length; j++) arm.add(clusters[user], traffic.scores[j], traffic.labels[j]);
    events += traffic.scores.length;
    if (events < nextLook) continue;
    nextLook += EVENTS_PER_LOOK;
    const c = clusteredAuc(state.canary);
    const p = clusteredAuc(state.production);
    METHODS.forEach((method, i) => {
      if (outcomes[i]) return;
      const verdict = method.decide(c, p, state);
      if (verdict) outcomes[i] = { verdict, events };
    });
  }
  return outcomes.map((o) => o ?? { verdict: 'inconclusive', events });
}

function share(outcomes: Outcome[], verdict: Verdict): string {
  const n = outcomes.filter((o) => o.verdict === verdict).length;
  return `${((100 * n) / outcomes.length).toFixed(1)} %`;
}

function medianEvents(outcomes: Outcome[], verdict: Verdict): string {
  const events = outcomes.filter((o) => o.verdict === verdict).map((o) => o.events);
  return events.length === 0 ? '–' : formatCount(quantile(events, 0.5));
}

function main(): void {
  const elapsed = stopwatch();
  const worse = modelWithAucShift(PRODUCTION, -SHIFT, WORLD);
  const better = modelWithAucShift(PRODUCTION, SHIFT, WORLD);
  const auc = (m: SimulatedModel) => populationAuc(m, WORLD).toFixed(3);
  log(`population AUC: production ${auc(PRODUCTION)}, worse ${auc(worse)}, better ${auc(better)}`);
  const rows: string[][] = [];
  for (const users of USER_COUNTS) {
    const run = (n: number, model: SimulatedModel, salt: number) =>
      Array.from({ length: n }, (_, r) => rollout(users, salt * 1_000_003 + r, model));
    const aa = run(AA_ROLLOUTS, PRODUCTION, 1);
    const bad = run(POWER_ROLLOUTS, worse, 2);
    const good = run(POWER_ROLLOUTS, better, 3);
    METHODS.forEach((method, i) => {
      const [a, w, b] = [aa, bad, good].map((outcomes) => outcomes.map((o) => o[i]));
      rows.push([
        formatCount(users),
        method.name,
        share(a, 'reject'),
        share(a, 'promote'),
        share(w, 'reject'),
        medianEvents(w, 'reject'),
        share(w, 'promote'),
        share(b, 'promote'),
        medianEvents(b, 'promote'),
        share(b, 'reject'),
      ]);
    });
    log(`${users} users done (${elapsed().toFixed(0)} s)`);
  }
  console.log(
    markdownTable(
      [
        'users',
        'test',
        'A/A rejected (false)',
        'A/A promoted',
        `${SHIFT} worse: rejected`,
        'median events',
        'wrongly promoted',
        `${SHIFT} better: promoted`,
        'median events',
        'wrongly rejected',
      ],
      rows,
    ),
  );
  console.log(
    `\n${AA_ROLLOUTS} A/A and ${POWER_ROLLOUTS} × 2 other rollouts per number of users; ${WORLD.canaryPercent} % canary, ` +
      `users' base-rate SD ${WORLD.userSd} and taste SD ${WORLD.tasteSd} (logit); a look every ${EVENTS_PER_LOOK} labelled ` +
      `predictions, at most ${formatCount(MAX_EVENTS)} (then inconclusive); policy ${JSON.stringify({ confidence: POLICY.confidence, minEvents: POLICY.minEvents, tolerance: POLICY.tolerance })}; ` +
      `population AUC production ${auc(PRODUCTION)}, worse ${auc(worse)}, better ${auc(better)}. ` +
      `${cpuModel()}, load ${loadavg()[0].toFixed(1)}, ${elapsed().toFixed(0)} s.`,
  );
}

main();
