import { InvalidFieldsError, type FieldError } from '@app/common';
import { delongUnpaired, normalCdf, normalQuantile, type ModelSpec, type Values } from '@app/mmoe/serving';

/** Per-task overrides of the policy's defaults. */
export interface TaskPolicy {
  minEvents?: number;
  tolerance?: number;
}

/**
 * When the canary is promoted or rejected on its own. Each gated task (binary tasks: their live AUC) needs
 * `minEvents` labelled predictions on both sides; then, one-sided at `confidence`, the canary is promoted when every
 * task is shown not worse than production by more than `tolerance` AUC points, and rejected as soon as one task is
 * shown worse by more than that. Otherwise the policy waits for more traffic.
 */
export interface RolloutPolicy {
  confidence: number;
  minEvents: number;
  tolerance: number;
  /** The tasks that gate, with overrides; when absent, every binary task of the canary with the defaults. */
  tasks?: Record<string, TaskPolicy>;
}

/** Scores and labels of one version on one task: the labelled predictions the test uses. */
export interface TaskSample {
  scores: Values;
  labels: Values;
}

export type PolicyVerdict = 'promote' | 'reject' | 'wait';

export interface TaskEvidence {
  task: string;
  verdict: PolicyVerdict;
  reason: string;
  minEvents: number;
  tolerance: number;
  canary: { count: number; positives: number; auc: number | null };
  production: { count: number; positives: number; auc: number | null };
  /** Canary AUC − production AUC, and DeLong's standard error of it (independent arms). */
  difference: number | null;
  standardError: number | null;
  /** One-sided bounds of the difference at the policy's confidence. */
  lowerBound: number | null;
  upperBound: number | null;
  /** P-value of "the canary is worse by more than the tolerance" (small ⇒ promote) and of its converse (small ⇒ reject). */
  pValueNotWorse: number | null;
  pValueWorse: number | null;
}

export interface PolicyDecision {
  verdict: PolicyVerdict;
  reason: string;
  confidence: number;
  test: 'delong-unpaired';
  tasks: TaskEvidence[];
}

export const DEFAULT_ROLLOUT_POLICY: RolloutPolicy = { confidence: 0.95, minEvents: 1000, tolerance: 0.01 };

/**
 * The policy's problems that depend on the version's spec, as field errors (400): which tasks may gate. The shape of
 * each field (types, bounds, unknown keys) is the API's edge validation (RolloutPolicyDto).
 */
export function checkRolloutPolicy(spec: ModelSpec, policy: RolloutPolicy): RolloutPolicy {
  const errors: FieldError[] = [];
  const binary = spec.tasks.filter((t) => t.type === 'binary').map((t) => t.name);
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
  if (errors.length > 0) throw new InvalidFieldsError(errors);
  return policy;
}

/**
 * The policy's verdict from both versions' labelled predictions per task. Rejection wins over promotion: one task
 * shown worse is enough, whatever the others say.
 */
export function decideRollout(
  policy: RolloutPolicy,
  spec: ModelSpec,
  canary: Record<string, TaskSample>,
  production: Record<string, TaskSample>,
): PolicyDecision {
  const gated = policy.tasks
    ? Object.keys(policy.tasks)
    : spec.tasks.filter((t) => t.type === 'binary').map((t) => t.name);
  const tasks = gated.map((task) =>
    taskEvidence(task, {
      minEvents: policy.tasks?.[task]?.minEvents ?? policy.minEvents,
      tolerance: policy.tasks?.[task]?.tolerance ?? policy.tolerance,
      confidence: policy.confidence,
      canary: canary[task] ?? EMPTY,
      production: production[task] ?? EMPTY,
    }),
  );
  const rejected = tasks.filter((t) => t.verdict === 'reject');
  const waiting = tasks.filter((t) => t.verdict === 'wait');
  const base = { confidence: policy.confidence, test: 'delong-unpaired' as const, tasks };
  if (rejected.length > 0)
    return {
      ...base,
      verdict: 'reject',
      reason: `worse beyond tolerance on ${rejected.map((t) => t.task).join(', ')}`,
    };
  if (waiting.length > 0)
    return { ...base, verdict: 'wait', reason: waiting.map((t) => `${t.task}: ${t.reason}`).join('; ') };
  return { ...base, verdict: 'promote', reason: `not worse beyond tolerance on ${gated.join(', ')}` };
}

const EMPTY: TaskSample = { scores: [], labels: [] };

function taskEvidence(
  task: string,
  o: { minEvents: number; tolerance: number; confidence: number; canary: TaskSample; production: TaskSample },
): TaskEvidence {
  const { minEvents, tolerance, confidence } = o;
  const z = normalQuantile(confidence);
  const alpha = 1 - confidence;
  const d = delongUnpaired(o.production, o.canary);
  const side = (e: typeof d.a, n: number) => ({ count: n, positives: e.positives, auc: finite(e.auc) });
  const evidence: TaskEvidence = {
    task,
    verdict: 'wait',
    reason: '',
    minEvents,
    tolerance,
    canary: side(d.b, o.canary.labels.length),
    production: side(d.a, o.production.labels.length),
    difference: finite(d.difference),
    standardError: finite(d.standardError),
    lowerBound: null,
    upperBound: null,
    pValueNotWorse: null,
    pValueWorse: null,
  };
  const fewest = Math.min(evidence.canary.count, evidence.production.count);
  if (fewest < minEvents) return { ...evidence, reason: `${fewest} of ${minEvents} labelled events` };
  if (evidence.difference === null || evidence.standardError === null)
    return { ...evidence, reason: 'AUC undefined: both labels must occur on both sides' };
  const { difference, standardError } = evidence;
  // Non-inferiority margin: H0 "canary AUC ≤ production AUC − tolerance", tested one-sided, and its converse.
  const statistic =
    standardError > 0 ? (difference + tolerance) / standardError : Math.sign(difference + tolerance) * Infinity;
  const pValueNotWorse = 1 - normalCdf(statistic);
  const pValueWorse = normalCdf(statistic);
  const bounds = { lowerBound: difference - z * standardError, upperBound: difference + z * standardError };
  if (pValueWorse < alpha)
    return { ...evidence, ...bounds, pValueNotWorse, pValueWorse, verdict: 'reject', reason: 'worse beyond tolerance' };
  if (pValueNotWorse < alpha)
    return {
      ...evidence,
      ...bounds,
      pValueNotWorse,
      pValueWorse,
      verdict: 'promote',
      reason: 'not worse beyond tolerance',
    };
  return { ...evidence, ...bounds, pValueNotWorse, pValueWorse, reason: 'inconclusive so far' };
}

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
