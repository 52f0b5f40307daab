import { lowerBound, taskMetric, type BinaryGateMetric, type ModelSpec, type TaskSpec } from '@app/mmoe';
import type { GateDecision, TaskMetricsByName, UnseenComparison } from '@app/registry';

/** What the candidate is compared with, on the same held-out slice. */
export type ProductionBaseline =
  | { kind: 'none' }
  /** Production reads features the candidate's data does not hold, so its score there would mean nothing. */
  | { kind: 'incomparable'; versionId: number; why: string }
  /** `unseen`: production trained on the earlier held-out rows, and both are compared on the later ones alone. */
  | { kind: 'evaluated'; versionId: number; tasks: TaskMetricsByName; unseen?: UnseenComparison };

/**
 * Where the held-out rows that production has not trained on start, in the slice's event times (sorted): at the first
 * row at or after production's `trainedTo`, 0 when it records none. A full retrain holds out the last part of its
 * window, of which an incremental production has often trained on much: judged on those rows, production would win.
 */
export function unseenFrom(heldOutTimes: readonly number[], trainedTo: string | undefined): number {
  return trainedTo === undefined ? 0 : lowerBound(heldOutTimes, Date.parse(trainedTo));
}

/**
 * Why production's metrics on the held-out slice would not compare with the candidate's, by how each weighs the rows
 * (training.weightedMetrics, by training.sampleWeight), or undefined when they weigh them alike. A weighted AUC beside
 * an unweighted one passed a candidate whose own unweighted AUC was below production's.
 */
export function weightingDifference(candidate: ModelSpec, production: ModelSpec): string | undefined {
  const weighing = ({ training }: ModelSpec) =>
    training.weightedMetrics ? `weighted by "${training.sampleWeight}"` : 'unweighted';
  const [mine, theirs] = [weighing(candidate), weighing(production)];
  return mine === theirs
    ? undefined
    : `its metrics are ${theirs} and the candidate's ${mine} (training.weightedMetrics): they would not compare`;
}

export interface GatePolicy {
  /** AUTO_CANARY: a candidate that passes goes to canary on its own. */
  autoCanary: boolean;
  /** What binary tasks are judged by (TRAINING_GATE_METRIC): AUC, or the user-grouped GAUC. */
  binaryMetric: BinaryGateMetric;
  /** Largest AUC (or GAUC) drop (absolute) a task may show against production. */
  aucTolerance: number;
  /** Largest RMSE rise, relative to production's, a task may show. */
  rmseTolerance: number;
  /**
   * Fewest held-out labels a task is judged on (TRAINING_GATE_MIN_LABELS): positives and negatives each for a binary
   * task, rows for a regression one.
   */
  minLabels: number;
}

/**
 * Canary when the first task (the spec's main objective) beats production, however slightly, and no task is worse than
 * production beyond the tolerance: binary tasks by AUC or GAUC (policy.binaryMetric; higher is better), regression
 * tasks by RMSE (lower), on the held-out rows production has not trained on (production.unseen, when it trained on some;
 * none: the candidate is kept). A task with fewer held-out labels than policy.minLabels is not judged: a handful of rows
 * would decide by chance. The first task then keeps the candidate (the next incremental run's window is longer, as
 * its parent stays the same); another is named in the reason and neither passes nor blocks. Without a production to
 * beat, the candidate waits for a human, who promotes the first version.
 */
export function decideRollout(
  tasks: readonly Pick<TaskSpec, 'name' | 'type'>[],
  candidate: TaskMetricsByName,
  production: ProductionBaseline,
  policy: GatePolicy,
): GateDecision {
  if (production.kind === 'none')
    return { decision: 'candidate', reason: 'there is no production version to compare with; promote one by hand' };
  if (production.kind === 'incomparable') {
    return {
      decision: 'candidate',
      reason: `production (version ${production.versionId}) was not evaluated: ${production.why}`,
    };
  }
  const { unseen } = production;
  if (unseen?.rows === 0) {
    return {
      decision: 'candidate',
      reason: `kept as candidate: production (version ${production.versionId}) has trained on every held-out row (its data ends at ${unseen.trainedTo}), so the comparison would favour it`,
    };
  }
  const [ours, theirs] = unseen ? [unseen.candidate, unseen.production] : [candidate, production.tasks];
  const comparisons = tasks.map((task) => compareTask(task, ours[task.name], theirs[task.name], policy));
  // Said of every outcome: the labels a task lacks to be judged are then those of these rows.
  const on = unseen
    ? `; compared on the ${unseen.rows} held-out rows from ${unseen.trainedTo}, which production has not trained on`
    : '';
  const [first] = comparisons;
  const failure = first.improved ? comparisons.find((c) => c.worse) : first;
  if (failure) return { decision: 'candidate', reason: `kept as candidate: ${failure.text}${on}` };
  const unjudged = comparisons.slice(1).filter((c) => c.unjudged);
  const passed = `${first.text}; no task is worse beyond the tolerance${unjudged.map((c) => `; ${c.text}`).join('')}${on}`;
  return policy.autoCanary
    ? { decision: 'canary', reason: passed }
    : { decision: 'candidate', reason: `${passed}, but AUTO_CANARY is off` };
}

interface TaskComparison {
  improved: boolean;
  worse: boolean;
  /** Too few labels to judge it by. */
  unjudged?: boolean;
  text: string;
}

function compareTask(
  task: Pick<TaskSpec, 'name' | 'type'>,
  candidate: Record<string, number> | undefined,
  production: Record<string, number> | undefined,
  policy: GatePolicy,
): TaskComparison {
  const { metric, higherIsBetter } = taskMetric(task, policy.binaryMetric);
  const label = `${task.name} ${metric.toUpperCase()}`;
  const ours = candidate?.[metric];
  const theirs = production?.[metric];
  if (!candidate) return { improved: false, worse: true, text: `${label} of the candidate is undefined` };
  // Before the metric itself: a slice with no positive at all has no AUC, and is too small to judge, not worse.
  const labels = fewestLabels(task, candidate, metric);
  if (labels.count < policy.minLabels) {
    const needs = `the gate needs ${policy.minLabels} (TRAINING_GATE_MIN_LABELS)`;
    return { improved: false, worse: false, unjudged: true, text: `${label} is not judged: ${labels.text}, ${needs}` };
  }
  if (ours === undefined || !Number.isFinite(ours))
    return { improved: false, worse: true, text: `${label} of the candidate is undefined` };
  if (theirs === undefined || !Number.isFinite(theirs)) {
    // Nothing to lose against, but no measured gain either: enough for a secondary task, not for the main one.
    return { improved: false, worse: false, text: `${label} of production is undefined, so no gain can be measured` };
  }
  const gain = higherIsBetter ? ours - theirs : theirs - ours;
  const allowed = higherIsBetter ? policy.aucTolerance : theirs * policy.rmseTolerance;
  const numbers = `${round(ours)} vs production ${round(theirs)}`;
  if (gain > 0) return { improved: true, worse: false, text: `${label} improved (${numbers})` };
  if (-gain > allowed) {
    const tolerance = higherIsBetter ? `${policy.aucTolerance}` : `${policy.rmseTolerance * 100} %`;
    return {
      improved: false,
      worse: true,
      text: `${label} is worse beyond the tolerance of ${tolerance} (${numbers})`,
    };
  }
  return { improved: false, worse: false, text: `${label} did not improve (${numbers})` };
}

/**
 * The held-out labels a task's metric rests on: a binary task's rarer class (its metrics' count of labelled rows and
 * their label rate), and when judged by GAUC the users who have both classes if fewer; a regression task's rows.
 * Production's metrics are of the same rows.
 */
function fewestLabels(
  task: Pick<TaskSpec, 'type'>,
  metrics: Record<string, number>,
  metric: string,
): { count: number; text: string } {
  const rows = Number.isFinite(metrics.count) ? metrics.count : 0;
  if (task.type !== 'binary') return { count: rows, text: `${rows} held-out rows` };
  // No labelled row (a conditional task none of whose rows is observed): a label rate of 0 / 0.
  const positives = rows > 0 && Number.isFinite(metrics.labelRate) ? Math.round(metrics.labelRate * rows) : 0;
  const rarer =
    positives <= rows - positives
      ? { count: positives, text: `${positives} held-out positives` }
      : { count: rows - positives, text: `${rows - positives} held-out negatives` };
  // GAUC averages over the users who have both classes on the slice: a handful of them decide it however many rows.
  const users = Number.isFinite(metrics.gaucGroups) ? metrics.gaucGroups : 0;
  return metric === 'gauc' && users < rarer.count
    ? { count: users, text: `${users} held-out users with both a positive and a negative` }
    : rarer;
}

function round(value: number): number {
  return Number(value.toPrecision(4));
}
