/**
 * The rollout policy's statistics on simulated canary splits whose truth is known: users with strong random effects
 * (their own base rate and taste), a canary identical to production (A/A), or 0.02 AUC worse, or 0.02 better, and
 * the policy run at every look as traffic arrives. Side by side, the test the policy used before (DeLong's variance
 * as if impressions were independent, a fixed-sample one-sided test repeated at every look), the same test with the
 * variance taken across users, and the policy's test (clustered variance and a confidence sequence — the same
 * decideRollout() the API runs, on the same per-user-bucket aggregates). At 300 and 1,000 users, the alternatives the
 * policy's method was chosen over, each under the policy's own rules (minUsers, minEvents, confidence sequence): 16 and
 * 256 user buckets instead of 64, a user-level (streaming Poisson) bootstrap of the AUC difference, and the per-user
 * AUC (GAUC) with its variance across users; with each method's CPU time per look.
 *
 *   npm run bench:rollout [-- --quick] [-- --rollouts 1000] [-- --replicates 200]
 */
import { loadavg } from 'node:os';

import {
  BinaryAggregate,
  CanaryTraffic,
  clusteredAuc,
  mixtureBounds,
  modelWithAucShift,
  normalCdf,
  parseModelSpec,
  populationAuc,
  Rng,
  userCluster,
  type ClusteredAuc,
  type SimulatedModel,
} from '@app/mmoe';
import {
  AUC_MIXTURE_SCALE,
  decideRollout,
  DEFAULT_ROLLOUT_POLICY,
  POLICY_USER_BUCKETS,
  type RolloutPolicy,
} from '@app/registry';

import { cpuModel, formatCount, hasFlag, log, markdownTable, positiveIntFlag, quantile, stopwatch } from './bench.util';
import { StreamingBootstrap, UserHistograms } from './rollout.users';

const QUICK = hasFlag('quick');
const USER_COUNTS = QUICK ? [300, 1000, 10_000] : [100, 300, 1000, 10_000];
/** The numbers of users at which the alternatives to the policy's method are measured too. */
const ALTERNATIVE_USERS = [300, 1000];
/** A/A rollouts per number of users (the false-decision rate needs many); fewer for the power runs. */
const AA_ROLLOUTS = positiveIntFlag('rollouts', QUICK ? 100 : 1000);
const POWER_ROLLOUTS = Math.max(50, Math.round(AA_ROLLOUTS / 4));
/** Labelled predictions (both arms) between two looks, and at most per rollout. */
const EVENTS_PER_LOOK = 1000;
const MAX_EVENTS = QUICK ? 40_000 : 100_000;
const SHIFT = 0.02;
/** Replicates of the user-level bootstrap. */
const BOOTSTRAP_REPLICATES = positiveIntFlag('replicates', 200);
/** User-bucket counts compared with the policy's POLICY_USER_BUCKETS. */
const OTHER_BUCKETS = [16, 256];

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
type Decide = (state: RolloutState) => Verdict | undefined;

interface Arms<T> {
  canary: T;
  production: T;
}

/** What a look sees: the labelled predictions so far, per user bucket (by bucket count) and, for some, per user. */
interface RolloutState {
  buckets: Map<number, Arms<BinaryAggregate>>;
  users: Arms<number>;
  events: Arms<number>;
  alternatives?: { perUser: Arms<UserHistograms>; bootstrap: Arms<StreamingBootstrap> };
}

interface Method {
  name: string;
  decide: Decide;
  /** Measured only at ALTERNATIVE_USERS (it needs every user's predictions, or is a variant of the policy). */
  alternative?: boolean;
}

/** A fixed-sample one-sided test at the policy's confidence, repeated at every look, with the given variance. */
function fixedTest(variance: (a: ClusteredAuc) => number): Decide {
  return (state) => {
    if (Math.min(state.events.canary, state.events.production) < POLICY.minEvents) return undefined;
    const arms = state.buckets.get(POLICY_USER_BUCKETS)!;
    const canary = clusteredAuc(arms.canary);
    const production = clusteredAuc(arms.production);
    const se = Math.sqrt(variance(canary) + variance(production));
    const z = (canary.auc - production.auc + POLICY.tolerance) / se;
    if (!Number.isFinite(z)) return undefined;
    const alpha = 1 - POLICY.confidence;
    if (normalCdf(z) < alpha) return 'reject';
    if (1 - normalCdf(z) < alpha) return 'promote';
    return undefined;
  };
}

/** decideRollout() itself, as the API runs it, on the per-bucket aggregates of the given bucket count. */
function policyTest(policy: RolloutPolicy, buckets = POLICY_USER_BUCKETS): Decide {
  return (state) => {
    const arms = state.buckets.get(buckets)!;
    const decision = decideRollout(policy, SPEC, {
      canary: { users: state.users.canary, tasks: { click: arms.canary } },
      production: { users: state.users.production, tasks: { click: arms.production } },
      elapsedHours: 0,
    });
    return decision.verdict === 'wait' ? undefined : decision.verdict;
  };
}

/**
 * The policy's rules (minUsers, minEvents, the same one-sided confidence sequences at the same levels and τ) on
 * another estimate of the difference and its variance: only the statistic changes.
 */
function sequentialTest(
  estimate: (state: NonNullable<RolloutState['alternatives']>) => { difference: number; variance: number },
): Decide {
  const alpha = 1 - POLICY.confidence;
  return (state) => {
    if (Math.min(state.users.canary, state.users.production) < POLICY.minUsers) return undefined;
    if (Math.min(state.events.canary, state.events.production) < POLICY.minEvents) return undefined;
    const { difference, variance } = estimate(state.alternatives!);
    if (!Number.isFinite(difference) || !(variance > 0)) return undefined;
    const { lower, upper } = mixtureBounds(difference, variance, alpha, AUC_MIXTURE_SCALE);
    if (upper < -POLICY.tolerance) return 'reject';
    if (lower > -POLICY.tolerance) return 'promote';
    return undefined;
  };
}

const bootstrapTest = sequentialTest(({ bootstrap: { canary, production } }) => ({
  difference: canary.auc() - production.auc(),
  variance: canary.differenceVariance(production),
}));

const gaucTest = sequentialTest(({ perUser: { canary, production } }) => {
  const c = canary.gauc();
  const p = production.gauc();
  return { difference: c.gauc - p.gauc, variance: c.variance + p.variance };
});

const METHODS: Method[] = [
  { name: 'before: DeLong as if independent, fixed test at every look', decide: fixedTest((a) => a.iidVariance) },
  { name: 'variance across users, fixed test at every look', decide: fixedTest((a) => a.variance) },
  {
    name: `policy: across ${POLICY_USER_BUCKETS} user buckets, confidence sequence, minUsers ${POLICY.minUsers}`,
    decide: policyTest(POLICY),
  },
  { name: 'policy without minUsers', decide: policyTest({ ...POLICY, minUsers: 2 }) },
  ...OTHER_BUCKETS.map((buckets) => ({
    name: `policy over ${buckets} user buckets`,
    decide: policyTest(POLICY, buckets),
    alternative: true,
  })),
  {
    name: `user-level bootstrap (streaming, ${BOOTSTRAP_REPLICATES} replicates), confidence sequence`,
    decide: bootstrapTest,
    alternative: true,
  },
  {
    name: 'per-user AUC (GAUC), variance across users, confidence sequence',
    decide: gaucTest,
    alternative: true,
  },
];

interface Outcome {
  verdict: Verdict;
  events: number;
}

/** CPU milliseconds spent deciding, and looks, per method over a run. */
interface Cost {
  ms: number;
  looks: number;
}

interface RolloutResult {
  outcomes: Outcome[];
  /** With the alternatives: AUC(canary) − AUC(production) and the same in GAUC at the last look. */
  difference?: { auc: number; gauc: number };
}

/**
 * One rollout: traffic until every method has decided or MAX_EVENTS, each method looking every EVENTS_PER_LOOK.
 * `perUser` (reused across rollouts) is given when the alternatives are measured.
 */
function rollout(
  users: number,
  seed: number,
  canaryModel: SimulatedModel,
  methods: Method[],
  costs: Cost[],
  perUser?: Arms<UserHistograms>,
): RolloutResult {
  const traffic = new CanaryTraffic({ ...WORLD, users, seed }, { production: PRODUCTION, canary: canaryModel });
  const bucketCounts = perUser ? [POLICY_USER_BUCKETS, ...OTHER_BUCKETS] : [POLICY_USER_BUCKETS];
  const clusters = bucketCounts.map((k) => Int32Array.from(traffic.userIds, (id) => userCluster(id, k)));
  const aggregates = bucketCounts.map((k) => ({ canary: new BinaryAggregate(k), production: new BinaryAggregate(k) }));
  let alternatives: RolloutState['alternatives'];
  if (perUser) {
    perUser.canary.clear();
    perUser.production.clear();
    const weights = StreamingBootstrap.weights(users, BOOTSTRAP_REPLICATES, new Rng(seed ^ 0x5bd1e995));
    const bootstrap = () => new StreamingBootstrap(BOOTSTRAP_REPLICATES, weights);
    alternatives = { perUser, bootstrap: { canary: bootstrap(), production: bootstrap() } };
  }
  const seen = new Uint8Array(users);
  const state: RolloutState = {
    buckets: new Map(bucketCounts.map((k, i) => [k, aggregates[i]])),
    users: { canary: 0, production: 0 },
    events: { canary: 0, production: 0 },
    alternatives,
  };
  const outcomes: (Outcome | undefined)[] = methods.map(() => undefined);
  let events = 0;
  let nextLook = EVENTS_PER_LOOK;
  while (events < MAX_EVENTS && outcomes.some((o) => o === undefined)) {
    const user = traffic.next();
    const side = traffic.onCanary[user] === 1 ? 'canary' : 'production';
    if (!seen[user]) {
      seen[user] = 1;
      state.users[side]++;
    }
    for (let j = 0; j < traffic.scores.length; j++) {
      const [score, label] = [traffic.scores[j], traffic.labels[j]];
      for (let i = 0; i < bucketCounts.length; i++) aggregates[i][side].add(clusters[i][user], score, label);
      alternatives?.perUser[side].add(user, score, label);
      alternatives?.bootstrap[side].add(user, score, label);
    }
    state.events[side] += traffic.scores.length;
    events += traffic.scores.length;
    if (events < nextLook) continue;
    nextLook += EVENTS_PER_LOOK;
    methods.forEach((method, i) => {
      if (outcomes[i]) return;
      const started = process.cpuUsage();
      const verdict = method.decide(state);
      const spent = process.cpuUsage(started);
      costs[i].ms += (spent.user + spent.system) / 1000;
      costs[i].looks++;
      if (verdict) outcomes[i] = { verdict, events };
    });
  }
  return {
    outcomes: outcomes.map((o) => o ?? { verdict: 'inconclusive', events }),
    ...(alternatives && {
      difference: {
        auc: alternatives.bootstrap.canary.auc() - alternatives.bootstrap.production.auc(),
        gauc: perUser!.canary.gauc().gauc - perUser!.production.gauc().gauc,
      },
    }),
  };
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
  /** GAUC is not on AUC's scale: both differences at the end of the power rollouts, by number of users. */
  const scales: string[] = [];
  for (const users of USER_COUNTS) {
    const withAlternatives = ALTERNATIVE_USERS.includes(users);
    const methods = METHODS.filter((m) => withAlternatives || !m.alternative);
    const costs = methods.map(() => ({ ms: 0, looks: 0 }));
    const perUser = withAlternatives
      ? { canary: new UserHistograms(users), production: new UserHistograms(users) }
      : undefined;
    const run = (n: number, model: SimulatedModel, salt: number) =>
      Array.from({ length: n }, (_, r) => rollout(users, salt * 1_000_003 + r, model, methods, costs, perUser));
    const [aa, bad, good] = [
      run(AA_ROLLOUTS, PRODUCTION, 1),
      run(POWER_ROLLOUTS, worse, 2),
      run(POWER_ROLLOUTS, better, 3),
    ];
    methods.forEach((method, i) => {
      const [a, w, b] = [aa, bad, good].map((results) => results.map((r) => r.outcomes[i]));
      const ms = costs[i].ms / costs[i].looks;
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
        ms.toFixed(ms < 1 ? 2 : 1),
      ]);
    });
    if (withAlternatives) {
      const median = (results: RolloutResult[], key: 'auc' | 'gauc') =>
        quantile(
          results.map((r) => r.difference![key]),
          0.5,
        ).toFixed(4);
      scales.push(
        `${formatCount(users)} users: worse ${median(bad, 'auc')} AUC, ${median(bad, 'gauc')} GAUC; ` +
          `better ${median(good, 'auc')} AUC, ${median(good, 'gauc')} GAUC`,
      );
    }
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
        'CPU ms per look',
      ],
      rows,
    ),
  );
  console.log(
    `\n${AA_ROLLOUTS} A/A and ${POWER_ROLLOUTS} × 2 other rollouts per number of users; ${WORLD.canaryPercent} % canary, ` +
      `users' base-rate SD ${WORLD.userSd} and taste SD ${WORLD.tasteSd} (logit); a look every ${EVENTS_PER_LOOK} labelled ` +
      `predictions, at most ${formatCount(MAX_EVENTS)} (then inconclusive); policy ${JSON.stringify({ confidence: POLICY.confidence, minEvents: POLICY.minEvents, tolerance: POLICY.tolerance })}; ` +
      `population AUC production ${auc(PRODUCTION)}, worse ${auc(worse)}, better ${auc(better)}. ` +
      `Alternatives at ${ALTERNATIVE_USERS.map(formatCount).join(' and ')} users: other bucket counts, and two methods ` +
      `that keep state per user: a streaming Poisson bootstrap over users (${BOOTSTRAP_REPLICATES} replicates) and ` +
      `GAUC, each with the policy's minUsers, minEvents and confidence sequence. CPU ms per look: the statistics of ` +
      `one look in this process (mean over looks; not the database read). Median difference at the end of the power ` +
      `rollouts (GAUC is not on AUC's scale, so its tolerance means another thing): ${scales.join('; ')}. ` +
      `${cpuModel()}, load ${loadavg()[0].toFixed(1)}, ${elapsed().toFixed(0)} s.`,
  );
}

main();
