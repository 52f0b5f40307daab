import { InvalidFieldsError, type FieldError } from '@app/common';
import {
  BinaryAggregate,
  clusteredAuc,
  clusteredLogRatio,
  finite,
  mixtureBounds,
  RegressionAggregate,
  taskType,
  type ModelSpec,
  type TaskAggregate,
  type TaskType,
} from '@app/mmoe/serving';

/** Per-task overrides of the policy's defaults. */
export interface TaskPolicy {
  minEvents?: number;
  tolerance?: number;
}

/**
 * Bounds the canary must keep, beside AUC; each is checked only when set, and a breach shown at the policy's
 * confidence rejects the canary at once.
 */
export interface Guardrails {
  /** Binary tasks: mean prediction / label rate within [1/(1 + c), 1 + c]. */
  calibration?: number;
  /** Regression tasks: the canary's RMSE at most (1 + r) × production's. */
  regressionError?: number;
  /**
   * How much larger the share of the canary's score requests that fail (5xx) may be than production's (so that an
   * outage failing both sides does not reject the canary).
   */
  errorRate?: number;
  /** The canary's p99 scoring latency, in ms (at most ROLLOUT_POLICY_BOUNDS.latencyP99Ms.max). */
  latencyP99Ms?: number;
}

/**
 * When the canary is promoted or rejected on its own. Per gated binary task, d = AUC(canary) − AUC(production) on
 * the labelled predictions since the version became the canary, with the variance taken across users (the unit of
 * the split) and bounds that stay valid however often the policy looks (a confidence sequence). The canary is
 * rejected once a task's upper bound falls below −tolerance, promoted once every task's lower bound is above it
 * (non-inferiority), and the test ends `inconclusive` after `maxHours` (or `maxEvents`) without either.
 */
export interface RolloutPolicy {
  /** Probability that a decision is right, whatever the number of looks. */
  confidence: number;
  /** Labelled predictions each side needs, per gated task, before any decision on AUC. */
  minEvents: number;
  /** Users with labelled predictions each side needs before any decision on AUC or the model guardrails. */
  minUsers: number;
  tolerance: number;
  /** Hours after which a test still undecided ends inconclusive (canary kept as it is, an event recorded). */
  maxHours: number;
  /** Labelled canary predictions (per gated task, the fewest) after which an undecided test ends inconclusive. */
  maxEvents?: number;
  /** The tasks that gate, with overrides; when absent, every binary task of the canary with the defaults. */
  tasks?: Record<string, TaskPolicy>;
  guardrails?: Guardrails;
}

export const DEFAULT_ROLLOUT_POLICY: RolloutPolicy = {
  confidence: 0.95,
  minEvents: 1000,
  minUsers: 100,
  tolerance: 0.01,
  maxHours: 168,
};

/**
 * Users are hashed into this many buckets, the clusters of the variance: enough that the variance estimate is stable,
 * few enough that the state the check reads stays small. bench:rollout compares 16 and 256: 16 make the estimate
 * noisy, 256 cost more and decide nothing more.
 */
export const POLICY_USER_BUCKETS = 64;
/** The mixture's scale τ for AUC differences: the bound is tightest for effects of about this size (bench:rollout). */
export const AUC_MIXTURE_SCALE = 0.02;
/**
 * User buckets each class of a gated task must occupy on each side before its AUC decides anything. The variance
 * across buckets has as many degrees of freedom as the buckets holding a class, less one; with one class in a single
 * bucket its term is 0 whatever the labels (3 positives of one user gave a standard error of 0.001 and a promotion at
 * the first look). Below 10 a normal bound on that variance is far too narrow; 10 of the 64 buckets leaves a rare task
 * decidable once a few dozen users have clicked.
 */
export const MIN_CLASS_BUCKETS = 10;
/** The share of requests slower than latencyP99Ms that breaches it. */
const P99_SHARE = 0.01;

/**
 * The bounds of each field, which both edges check: the API's (RolloutPolicyDto) and the training queue's contract,
 * for a policy queued by any other producer.
 */
export const ROLLOUT_POLICY_BOUNDS = {
  confidence: { min: 0.5, max: 0.9999 },
  minEvents: { min: 1, max: 100_000_000 },
  tolerance: { min: 0, max: 0.5 },
  minUsers: { min: 2, max: 100_000_000 },
  /** Exclusive minimum. */
  maxHours: { min: 0, max: 8760 },
  maxEvents: { min: 1, max: 1_000_000_000 },
  calibration: { min: 0.001, max: 10 },
  regressionError: { min: 0.001, max: 10 },
  errorRate: { min: 0.0001, max: 0.5 },
  /** The latency histogram's largest finite bucket. */
  latencyP99Ms: { min: 1, max: 2500 },
} as const;

export const POLICY_TEST = 'delong-clustered-sequential';
export const POLICY_METHOD =
  `clustered DeLong (Obuchowski 1997) over ${POLICY_USER_BUCKETS} user buckets, ` +
  `one-sided normal-mixture confidence sequences (τ = ${AUC_MIXTURE_SCALE} AUC)`;

/** What the check reads of one side: its labelled predictions since the canary started, summed per user bucket. */
export interface ArmState {
  /** Distinct users with labelled predictions. */
  users: number;
  /** By task name; a task without labelled predictions may be absent. */
  tasks: Record<string, TaskAggregate>;
}

/** The canary's serving, summed over every API process since it became the canary. */
export interface ServingState {
  requests: number;
  errors: number;
  /** Cumulative latency histogram: counts[i] requests took at most bounds[i] seconds (the last bound is +Inf). */
  latency: { bounds: readonly number[]; counts: readonly number[] };
}

export interface PolicyInputs {
  canary: ArmState;
  production: ArmState;
  canaryServing?: ServingState;
  productionServing?: ServingState;
  /** Hours since the version became the canary. */
  elapsedHours: number;
}

export type TaskVerdict = 'promote' | 'reject' | 'wait';
export type PolicyVerdict = TaskVerdict | 'inconclusive';

/** One side's AUC on a task, with what a reviewer needs to judge its variance. */
export interface ArmAuc {
  count: number;
  positives: number;
  auc: number | null;
  /** Standard error across user buckets, and as if every prediction were independent. */
  standardError: number | null;
  iidStandardError: number | null;
  /** Variance across users over variance as if independent: how much the users' correlation costs. */
  designEffect: number | null;
  /** count / designEffect: as many independent predictions would measure the AUC as well. */
  effectiveCount: number | null;
  /** User buckets holding predictions. */
  clusters: number;
}

export interface TaskEvidence {
  task: string;
  verdict: TaskVerdict;
  reason: string;
  minEvents: number;
  tolerance: number;
  canary: ArmAuc;
  production: ArmAuc;
  /** Canary AUC − production AUC, and its standard error (the arms are different users: variances add). */
  difference: number | null;
  standardError: number | null;
  /**
   * The confidence sequence of the difference, each bound valid at every look: the lower one (promotion) at the
   * policy's confidence, the upper one (rejection) at its share of 1 − confidence among the tests that can reject.
   */
  lowerBound: number | null;
  upperBound: number | null;
}

export interface GuardrailEvidence {
  guardrail: keyof Guardrails;
  task?: string;
  breached: boolean;
  /** The bound as configured, and the estimate and its confidence-sequence bounds on the same scale. */
  bound: number;
  estimate: number | null;
  lowerBound: number | null;
  upperBound: number | null;
  /** Observations behind the estimate (predictions or requests). */
  count: number;
  /** Production's value of the same quantity, for comparison, where it has one. */
  production?: number | null;
  reason: string;
}

export interface PolicyDecision {
  verdict: PolicyVerdict;
  reason: string;
  confidence: number;
  test: typeof POLICY_TEST;
  method: string;
  elapsedHours: number;
  users: { canary: number; production: number; minUsers: number };
  tasks: TaskEvidence[];
  guardrails: GuardrailEvidence[];
}

/** A policy as stored: one set before minUsers and maxHours existed lacks them. */
export type StoredRolloutPolicy = Omit<RolloutPolicy, 'minUsers' | 'maxHours'> &
  Partial<Pick<RolloutPolicy, 'minUsers' | 'maxHours'>>;

/**
 * A policy read back from a jsonb column (a version's, a retraining cadence's or a queued job's), with the defaults of
 * the fields it predates. Only a validated RolloutPolicy is written there now, so its shape is trusted; what the edge
 * once let through is read as what it was taken to mean: `maxEvents: null` as no maximum (not as a maximum of 0 that
 * ends every test at once), `tasks: {}` as every binary task (not as none, which would promote without a test).
 */
export function readRolloutPolicy(stored: object): RolloutPolicy {
  const { maxEvents, tasks, ...policy } = stored as StoredRolloutPolicy;
  return {
    ...DEFAULT_ROLLOUT_POLICY,
    ...policy,
    ...(typeof maxEvents === 'number' && { maxEvents }),
    ...(tasks && Object.keys(tasks).length > 0 && { tasks }),
  };
}

/**
 * A decision as the first policy recorded it in the rollout history (an unclustered DeLong test with p-values, before
 * users, guardrails and the inconclusive end): kept as it was.
 */
export interface EarlierPolicyDecision {
  verdict: TaskVerdict;
  reason: string;
  confidence: number;
  test: 'delong-unpaired';
  tasks: (Omit<TaskEvidence, 'canary' | 'production'> & {
    canary: Pick<ArmAuc, 'count' | 'positives' | 'auc'>;
    production: Pick<ArmAuc, 'count' | 'positives' | 'auc'>;
    pValueNotWorse: number | null;
    pValueWorse: number | null;
  })[];
}

/**
 * The policy's problems beyond the shape of each field (types, bounds, unknown keys: the API's edge validation,
 * RolloutPolicyDto), as field errors (400): which tasks may gate, against the version's spec (none yet: not
 * checked), and whether maxEvents leaves room to decide.
 */
export function checkRolloutPolicy(spec: ModelSpec | undefined, policy: RolloutPolicy): RolloutPolicy {
  const errors: FieldError[] = spec ? specErrors(spec, policy) : [];
  // The test ends once the fewest of the gated tasks' predictions reach maxEvents: below a task's minEvents, that
  // task could never be decided, and the test would always end inconclusive.
  const needed = Math.max(
    ...(policy.tasks ? Object.values(policy.tasks).map((t) => t.minEvents ?? policy.minEvents) : [policy.minEvents]),
  );
  if (policy.maxEvents !== undefined && policy.maxEvents < needed)
    errors.push({
      field: 'maxEvents',
      message: `maxEvents (${policy.maxEvents}) is below the ${needed} labelled predictions a gated task needs before any decision (minEvents): the test would always end inconclusive`,
    });
  if (errors.length > 0) throw new InvalidFieldsError(errors);
  return policy;
}

/** What a policy asks of the model's tasks that `spec` does not have. */
function specErrors(spec: ModelSpec, policy: RolloutPolicy): FieldError[] {
  const errors: FieldError[] = [];
  const binary = gatedTasks(spec);
  for (const name of Object.keys(policy.tasks ?? {})) {
    if (!binary.includes(name)) {
      errors.push({
        field: `tasks.${name}`,
        message: `tasks.${name} is not a binary task of the model (${binary.join(', ') || 'it has none'}); only binary tasks gate, on AUC`,
      });
    }
  }
  if (!policy.tasks && binary.length === 0)
    errors.push({ field: 'tasks', message: 'the model has no binary task for the policy to gate on' });
  if (policy.guardrails?.regressionError !== undefined && errorTasks(spec).length === 0)
    errors.push({ field: 'guardrails.regressionError', message: 'the model has no regression task' });
  return errors;
}

/**
 * checkRolloutPolicy on a policy a request gives in its `rolloutPolicy` field (a training job's, a cadence's), against
 * the spec the version it will canary is trained with (undefined: not known yet), its errors named under that field.
 */
export function checkRolloutPolicyField(spec: ModelSpec | undefined, policy: StoredRolloutPolicy): void {
  try {
    checkRolloutPolicy(spec, readRolloutPolicy(policy));
  } catch (e) {
    if (!(e instanceof InvalidFieldsError)) throw e;
    throw new InvalidFieldsError(
      e.errors.map(({ field, message }) => ({ field: `rolloutPolicy.${field}`, message: `rolloutPolicy.${message}` })),
    );
  }
}

/**
 * The policy's verdict from both sides' state. A guardrail breach rejects at once; then nothing is decided on AUC
 * before both sides have `minUsers` users and each gated task `minEvents` predictions. Rejection wins over promotion:
 * one task shown worse is enough, whatever the others say.
 *
 * Any of the tests can reject, so they share 1 − confidence (Bonferroni: each of the m one-sided bounds that can
 * reject is at level (1 − confidence) / m); promotion needs every gated task's lower bound, each at the full level.
 * Either way the chance of a wrong decision stays within 1 − confidence. m depends on the policy and the spec only,
 * never on the data, so that it is the same at every look.
 */
export function decideRollout(policy: RolloutPolicy, spec: ModelSpec, inputs: PolicyInputs): PolicyDecision {
  const alpha = 1 - policy.confidence;
  const { canary, production } = inputs;
  const enoughUsers = Math.min(canary.users, production.users) >= policy.minUsers;
  const gated = policy.tasks ? Object.keys(policy.tasks) : gatedTasks(spec);
  const rejectAlpha = alpha / (gated.length + guardrailTests(policy, spec));
  const guardrails = checkGuardrails(policy, spec, inputs, rejectAlpha, enoughUsers);
  const tasks = gated.map((task) =>
    taskEvidence(task, {
      minEvents: policy.tasks?.[task]?.minEvents ?? policy.minEvents,
      tolerance: policy.tasks?.[task]?.tolerance ?? policy.tolerance,
      alpha,
      rejectAlpha,
      canary: binaryOf(canary.tasks[task]),
      production: binaryOf(production.tasks[task]),
    }),
  );
  const decision = (verdict: PolicyVerdict, reason: string): PolicyDecision => ({
    verdict,
    reason,
    confidence: policy.confidence,
    test: POLICY_TEST,
    method: POLICY_METHOD,
    elapsedHours: inputs.elapsedHours,
    users: { canary: canary.users, production: production.users, minUsers: policy.minUsers },
    tasks: enoughUsers ? tasks : tasks.map((t) => ({ ...t, verdict: 'wait' as const, reason: 'too few users' })),
    guardrails,
  });

  const breached = guardrails.filter((g) => g.breached);
  if (breached.length > 0) return decision('reject', `guardrail breached: ${breached.map((g) => g.reason).join('; ')}`);
  const ended = undecidedEnd(policy, inputs, tasks);
  if (!enoughUsers) {
    const reason = `${Math.min(canary.users, production.users)} of ${policy.minUsers} users on the smaller side`;
    return ended ? decision('inconclusive', `${ended} (${reason})`) : decision('wait', reason);
  }
  const rejected = tasks.filter((t) => t.verdict === 'reject');
  if (rejected.length > 0)
    return decision('reject', `worse beyond tolerance on ${rejected.map((t) => t.task).join(', ')}`);
  // No gated task (a spec without binary tasks): nothing shows the canary not worse, so it is never promoted.
  if (tasks.length === 0) return decision(ended ? 'inconclusive' : 'wait', ended ?? 'no binary task to gate on');
  const waiting = tasks.filter((t) => t.verdict === 'wait');
  if (waiting.length === 0) return decision('promote', `not worse beyond tolerance on ${gated.join(', ')}`);
  const reason = waiting.map((t) => `${t.task}: ${t.reason}`).join('; ');
  return ended ? decision('inconclusive', `${ended} (${reason})`) : decision('wait', reason);
}

/** Why an undecided test ends now, if it does: its duration or its sample is spent. */
function undecidedEnd(policy: RolloutPolicy, inputs: PolicyInputs, tasks: TaskEvidence[]): string | undefined {
  if (inputs.elapsedHours >= policy.maxHours) return `no decision after ${policy.maxHours} h`;
  const fewest = Math.min(...tasks.map((t) => t.canary.count));
  if (policy.maxEvents !== undefined && tasks.length > 0 && fewest >= policy.maxEvents)
    return `no decision after ${policy.maxEvents} labelled canary predictions`;
  return undefined;
}

function taskEvidence(
  task: string,
  o: {
    minEvents: number;
    tolerance: number;
    /** The levels of the lower (promoting) and upper (rejecting) bounds. */
    alpha: number;
    rejectAlpha: number;
    canary: BinaryAggregate | undefined;
    production: BinaryAggregate | undefined;
  },
): TaskEvidence {
  const { minEvents, tolerance, alpha, rejectAlpha } = o;
  const canary = armAuc(o.canary);
  const production = armAuc(o.production);
  const evidence: TaskEvidence = {
    task,
    verdict: 'wait',
    reason: '',
    minEvents,
    tolerance,
    canary: canary.evidence,
    production: production.evidence,
    difference: null,
    standardError: null,
    lowerBound: null,
    upperBound: null,
  };
  const fewest = Math.min(canary.evidence.count, production.evidence.count);
  if (fewest < minEvents) return { ...evidence, reason: `${fewest} of ${minEvents} labelled events` };
  const thin = thinClass('canary', canary) ?? thinClass('production', production);
  if (thin) return { ...evidence, reason: thin };
  const difference = canary.auc - production.auc;
  const variance = canary.variance + production.variance;
  if (!Number.isFinite(difference) || !(variance > 0))
    return {
      ...evidence,
      reason: 'AUC or its variance undefined: both labels must occur on both sides, in two user buckets',
    };
  const { lower } = mixtureBounds(difference, variance, alpha, AUC_MIXTURE_SCALE);
  const { upper } = mixtureBounds(difference, variance, rejectAlpha, AUC_MIXTURE_SCALE);
  const measured = {
    ...evidence,
    difference,
    standardError: Math.sqrt(variance),
    lowerBound: lower,
    upperBound: upper,
  };
  // Non-inferiority with margin `tolerance`: reject once d < −tolerance is shown, promote once d > −tolerance is.
  if (upper < -tolerance) return { ...measured, verdict: 'reject', reason: 'worse beyond tolerance' };
  if (lower > -tolerance) return { ...measured, verdict: 'promote', reason: 'not worse beyond tolerance' };
  return { ...measured, reason: 'inconclusive so far' };
}

/** Why a side's labels are too concentrated for its variance to be trusted, if they are. */
function thinClass(side: string, arm: MeasuredArm): string | undefined {
  for (const [label, buckets] of [
    ['positives', arm.positiveClusters],
    ['negatives', arm.negativeClusters],
  ] as const) {
    if (buckets < MIN_CLASS_BUCKETS)
      return `the ${side}'s ${label} lie in ${buckets} user buckets, fewer than the ${MIN_CLASS_BUCKETS} its variance needs`;
  }
  return undefined;
}

interface MeasuredArm {
  auc: number;
  variance: number;
  positiveClusters: number;
  negativeClusters: number;
  evidence: ArmAuc;
}

function armAuc(aggregate: BinaryAggregate | undefined): MeasuredArm {
  if (!aggregate)
    return {
      auc: NaN,
      variance: NaN,
      positiveClusters: 0,
      negativeClusters: 0,
      evidence: {
        count: 0,
        positives: 0,
        auc: null,
        standardError: null,
        iidStandardError: null,
        designEffect: null,
        effectiveCount: null,
        clusters: 0,
      },
    };
  const c = clusteredAuc(aggregate);
  const count = c.positives + c.negatives;
  const designEffect = c.variance / c.iidVariance;
  return {
    auc: c.auc,
    variance: c.variance,
    positiveClusters: c.positiveClusters,
    negativeClusters: c.negativeClusters,
    evidence: {
      count,
      positives: c.positives,
      auc: finite(c.auc),
      standardError: finite(Math.sqrt(c.variance)),
      iidStandardError: finite(Math.sqrt(c.iidVariance)),
      designEffect: finite(designEffect),
      effectiveCount: finite(count / designEffect),
      clusters: c.clusters,
    },
  };
}

/** The one-sided bounds the guardrails may reject on: calibration has two per binary task (too high, too low). */
function guardrailTests(policy: RolloutPolicy, spec: ModelSpec): number {
  const g = policy.guardrails ?? {};
  return (
    (g.calibration !== undefined ? 2 * calibratedTasks(spec).length : 0) +
    (g.regressionError !== undefined ? errorTasks(spec).length : 0) +
    (g.errorRate !== undefined ? 1 : 0) +
    (g.latencyP99Ms !== undefined ? 1 : 0)
  );
}

/** Each guardrail set, judged at `alpha` per one-sided bound. */
function checkGuardrails(
  policy: RolloutPolicy,
  spec: ModelSpec,
  inputs: PolicyInputs,
  alpha: number,
  enoughUsers: boolean,
): GuardrailEvidence[] {
  const g = policy.guardrails ?? {};
  const out: GuardrailEvidence[] = [];
  if (g.calibration !== undefined && enoughUsers) {
    for (const task of calibratedTasks(spec)) {
      const canary = binaryOf(inputs.canary.tasks[task]);
      if (canary) out.push(calibration(task, g.calibration, canary, binaryOf(inputs.production.tasks[task]), alpha));
    }
  }
  if (g.regressionError !== undefined && enoughUsers) {
    for (const task of errorTasks(spec)) {
      const canary = regressionOf(inputs.canary.tasks[task]);
      const production = regressionOf(inputs.production.tasks[task]);
      if (canary && production) out.push(regressionError(task, g.regressionError, canary, production, alpha));
    }
  }
  const serving = inputs.canaryServing;
  if (serving && g.errorRate !== undefined) {
    const production = inputs.productionServing;
    const baseline = production && { hits: production.errors, requests: production.requests };
    out.push(
      shareAbove(
        'errorRate',
        g.errorRate,
        { hits: serving.errors, requests: serving.requests },
        g.errorRate,
        alpha,
        baseline,
      ),
    );
  }
  if (serving && g.latencyP99Ms !== undefined) {
    const slower = slowerThan(serving, g.latencyP99Ms / 1000);
    const share = shareAbove(
      'latencyP99Ms',
      g.latencyP99Ms,
      { hits: slower, requests: serving.requests },
      P99_SHARE,
      alpha,
    );
    out.push({
      ...share,
      estimate: finite(p99Ms(serving)),
      reason: share.breached ? `p99 latency above ${g.latencyP99Ms} ms: ${share.reason}` : share.reason,
    });
  }
  return out;
}

/** The canary's Σ prediction / Σ label on a binary task, on the log scale, against ±log(1 + bound). */
function calibration(
  task: string,
  bound: number,
  canary: BinaryAggregate,
  production: BinaryAggregate | undefined,
  alpha: number,
): GuardrailEvidence {
  const predictions = Float64Array.from({ length: canary.clusters }, (_, k) => canary.cluster(k).predictionSum);
  const labels = Float64Array.from({ length: canary.clusters }, (_, k) => canary.cluster(k).labelSum);
  const ratio = clusteredLogRatio(predictions, labels);
  const limit = Math.log(1 + bound);
  const base = { guardrail: 'calibration' as const, task, bound, count: canary.totals().count };
  const productionTotals = production?.totals();
  const productionRatio = productionTotals ? finite(productionTotals.predictionSum / productionTotals.labelSum) : null;
  if (!(ratio.variance > 0)) return unmeasured(base, 'undefined: no label or too few user buckets', productionRatio);
  const { lower, upper } = mixtureBounds(ratio.estimate, ratio.variance, alpha, limit);
  const breached = lower > limit || upper < -limit;
  return {
    ...base,
    breached,
    estimate: Math.exp(ratio.estimate),
    lowerBound: Math.exp(lower),
    upperBound: Math.exp(upper),
    production: productionRatio,
    reason: breached
      ? `${task}: mean prediction / label rate ${Math.exp(ratio.estimate).toFixed(3)} outside [${(1 / (1 + bound)).toFixed(3)}, ${(1 + bound).toFixed(3)}]`
      : `${task}: calibration within bounds or not yet shown outside`,
  };
}

/** Canary RMSE / production RMSE on a regression task (log of the MSE ratio, halved), against 1 + bound. */
function regressionError(
  task: string,
  bound: number,
  canary: RegressionAggregate,
  production: RegressionAggregate,
  alpha: number,
): GuardrailEvidence {
  const logMse = (a: RegressionAggregate) =>
    clusteredLogRatio(
      Float64Array.from({ length: a.clusters }, (_, k) => a.cluster(k).squaredErrorSum),
      Float64Array.from({ length: a.clusters }, (_, k) => a.cluster(k).count),
    );
  const c = logMse(canary);
  const p = logMse(production);
  const base = { guardrail: 'regressionError' as const, task, bound, count: canary.totals().count };
  const productionRmse = finite(Math.exp(p.estimate / 2));
  const variance = c.variance + p.variance;
  if (!(variance > 0)) return unmeasured(base, 'undefined: too few user buckets', productionRmse);
  // On the RMSE-ratio scale: ratio = exp(d / 2) where d is the log MSE ratio.
  const d = c.estimate - p.estimate;
  const limit = 2 * Math.log(1 + bound);
  const { lower, upper } = mixtureBounds(d, variance, alpha, limit);
  const breached = lower > limit;
  return {
    ...base,
    breached,
    estimate: Math.exp(d / 2),
    lowerBound: Math.exp(lower / 2),
    upperBound: Math.exp(upper / 2),
    production: productionRmse,
    reason: breached
      ? `${task}: RMSE ${Math.exp(d / 2).toFixed(3)} × production's, above ${(1 + bound).toFixed(3)}`
      : `${task}: RMSE within bounds or not yet shown above`,
  };
}

/**
 * Requests a serving guardrail waits for before it may breach: 3 failures of 3 requests are shown above a 1 % limit
 * with any confidence, and a warm-up burst or a moment's outage would reject a canary on them.
 */
export const MIN_GUARDRAIL_REQUESTS = 100;

/**
 * A share of the canary's requests (failed, or slower than a bound), less the baseline's share if one is given,
 * shown above `limit`, once there are MIN_GUARDRAIL_REQUESTS. Requests are close to independent; the canary's variance
 * takes the larger of the estimate's and the limit's, so that a share of 0 is not taken as certain.
 */
function shareAbove(
  guardrail: 'errorRate' | 'latencyP99Ms',
  bound: number,
  canary: { hits: number; requests: number },
  limit: number,
  alpha: number,
  baseline?: { hits: number; requests: number },
): GuardrailEvidence {
  const { hits, requests } = canary;
  const base = { guardrail, bound, count: requests };
  if (requests < MIN_GUARDRAIL_REQUESTS)
    return unmeasured(base, `${requests} requests, fewer than the ${MIN_GUARDRAIL_REQUESTS} a serving guardrail needs`);
  const share = hits / requests;
  const b = baseline && baseline.requests > 0 ? baseline.hits / baseline.requests : 0;
  const baselineVariance = baseline && baseline.requests > 0 ? (b * (1 - b)) / baseline.requests : 0;
  const variance = Math.max(share * (1 - share), limit * (1 - limit)) / requests + baselineVariance;
  const { lower, upper } = mixtureBounds(share - b, variance, alpha, limit);
  const breached = lower > limit;
  const over = baseline ? ` over production's ${(100 * b).toFixed(2)} %` : '';
  return {
    ...base,
    breached,
    estimate: share - b,
    lowerBound: lower,
    upperBound: upper,
    ...(baseline && { production: b }),
    reason: breached
      ? `${hits} of ${requests} requests (${(100 * share).toFixed(2)} %${over}) above ${(100 * limit).toFixed(2)} %`
      : `${hits} of ${requests} requests`,
  };
}

/** A guardrail with nothing to judge yet: not breached, no estimate. */
function unmeasured(
  base: Pick<GuardrailEvidence, 'guardrail' | 'bound' | 'count'> & { task?: string },
  reason: string,
  production?: number | null,
): GuardrailEvidence {
  return {
    ...base,
    breached: false,
    estimate: null,
    lowerBound: null,
    upperBound: null,
    ...(production !== undefined && { production }),
    reason,
  };
}

/** Requests slower than `seconds`: above the first bucket bound at or beyond it (so never more than were). */
function slowerThan(serving: ServingState, seconds: number): number {
  const { bounds, counts } = serving.latency;
  const i = bounds.findIndex((b) => b >= seconds);
  return i < 0 ? 0 : serving.requests - counts[i];
}

/** The p99 read from the histogram, interpolated within its bucket (for the evidence only). */
function p99Ms(serving: ServingState): number {
  const { bounds, counts } = serving.latency;
  const rank = 0.99 * serving.requests;
  const i = counts.findIndex((c) => c >= rank);
  if (i < 0 || !Number.isFinite(bounds[i])) return NaN;
  const below = i === 0 ? 0 : counts[i - 1];
  const from = i === 0 ? 0 : bounds[i - 1];
  const within = counts[i] - below;
  return 1000 * (from + (within > 0 ? ((rank - below) / within) * (bounds[i] - from) : 0));
}

function binaryOf(a: TaskAggregate | undefined): BinaryAggregate | undefined {
  return a instanceof BinaryAggregate ? a : undefined;
}

function regressionOf(a: TaskAggregate | undefined): RegressionAggregate | undefined {
  return a instanceof RegressionAggregate ? a : undefined;
}

/** Which tests apply to which tasks is their type's (task-types.ts): AUC gates, calibration, error in label units. */
function tasksWhere(spec: ModelSpec, applies: (type: TaskType) => boolean): string[] {
  return spec.tasks.filter((t) => applies(taskType(t))).map((t) => t.name);
}

/** The tasks judged by AUC (binary ones): what the policy gates on by default and what compare-live tests. */
export function gatedTasks(spec: ModelSpec): string[] {
  return tasksWhere(spec, (type) => type.metric === 'auc');
}

function calibratedTasks(spec: ModelSpec): string[] {
  return tasksWhere(spec, (type) => type.calibrated);
}

function errorTasks(spec: ModelSpec): string[] {
  return tasksWhere(spec, (type) => type.metric === 'rmse');
}
