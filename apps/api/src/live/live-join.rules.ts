import { servedKey, type Granularity, type LabelledPrediction, type LoggedPrediction } from '@app/db';
import { auc, BinaryAggregate, taskType, userCluster, type TaskAggregate, type TaskTypeName } from '@app/mmoe/serving';
import { POLICY_USER_BUCKETS } from '@app/registry';

/** A version's tasks in spec order: the order of its logged scores. */
export interface VersionTasks {
  names: readonly string[];
  types: readonly TaskTypeName[];
}

export interface JoinInputs {
  /** The logged predictions of the served keys (request, user, item) new events came back for. */
  predictions: readonly LoggedPrediction[];
  /** Their merged labels (all events of the key, max per task), by servedKey. */
  labels: ReadonlyMap<string, Record<string, number>>;
  /** Every labelled prediction already stored for their requests (all items, every version). */
  before: readonly LabelledPrediction[];
  /** undefined for a version that no longer exists (its predictions are skipped). */
  tasksOf: (versionId: number) => VersionTasks | undefined;
  /** The canary comparison in progress, if any: its sides' predictions since `since` also go into its state. */
  epoch?: { canaryVersionId: number; productionVersionId: number; since: Date };
}

export interface AggregateDelta {
  versionId: number;
  task: string;
  granularity: Granularity;
  periodStart: Date;
  delta: TaskAggregate;
}

export interface JoinPlan {
  /** New labelled predictions, or stored ones whose merged labels changed. */
  labelled: LabelledPrediction[];
  /** What to add to the stored aggregates, by aggregateKey. */
  aggregates: Map<string, AggregateDelta>;
  /** What to add to the canary epoch's aggregates, by version and task. */
  canary: Map<string, { versionId: number; task: string; delta: TaskAggregate }>;
  canaryUsers: { versionId: number; userId: string }[];
}

export const GRANULARITY_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

export function periodStart(at: Date, granularity: Granularity): Date {
  const ms = GRANULARITY_MS[granularity];
  return new Date(Math.floor(at.getTime() / ms) * ms);
}

/**
 * What one pass of the join changes: each prediction whose merged labels are new or changed is retracted with its
 * old labels (if it had any) and added with the new ones, to the aggregates of its minute, hour and day, and to the
 * canary epoch's when it is one of its sides'; each request whose labelled items changed has its AUC (the ranking it
 * served) retracted and added again the same way. Pure: the service reads the inputs and writes the plan.
 */
export function planJoin(inputs: JoinInputs): JoinPlan {
  const plan: JoinPlan = { labelled: [], aggregates: new Map(), canary: new Map(), canaryUsers: [] };
  const stored = new Map(inputs.before.map((row) => [rowKey(row), row]));
  const after = new Map(stored);
  // A request id a client reused for several requests of one user: keep one prediction per key and version, the newest.
  const newest = new Map<string, LoggedPrediction>();
  for (const p of inputs.predictions) {
    const key = rowKey(p);
    const seen = newest.get(key);
    if (!seen || seen.loggedAt < p.loggedAt) newest.set(key, p);
  }
  const touched = new Set<string>();
  const users = new Set<string>();
  for (const [key, p] of newest) {
    const tasks = inputs.tasksOf(p.versionId);
    const labels = inputs.labels.get(servedKey(p));
    if (!tasks || !labels) continue;
    const old = stored.get(key);
    if (old && sameLabels(old.labels, labels)) continue;
    const row: LabelledPrediction = {
      requestId: p.requestId,
      itemId: p.itemId,
      versionId: p.versionId,
      userId: p.userId,
      loggedAt: old?.loggedAt ?? p.loggedAt,
      scores: old?.scores ?? p.scores,
      labels,
    };
    if (old) addPrediction(plan, old, tasks, inputs.epoch, -1);
    addPrediction(plan, row, tasks, inputs.epoch, 1);
    after.set(key, row);
    plan.labelled.push(row);
    touched.add(requestKey(row));
    if (inCanaryEpoch(row, inputs.epoch) && !users.has(`${row.versionId}\u0000${row.userId}`)) {
      users.add(`${row.versionId}\u0000${row.userId}`);
      plan.canaryUsers.push({ versionId: row.versionId, userId: row.userId });
    }
  }
  addRequests(plan, inputs, groupByRequest(stored.values(), touched), -1);
  addRequests(plan, inputs, groupByRequest(after.values(), touched), 1);
  return plan;
}

/**
 * A canary epoch's state from the labelled predictions of its sides already stored (when it starts, or after the
 * state was lost): the epoch's part of planJoin for each of them.
 */
export function planCanaryEpoch(
  rows: readonly LabelledPrediction[],
  tasksOf: JoinInputs['tasksOf'],
  epoch: NonNullable<JoinInputs['epoch']>,
): Pick<JoinPlan, 'canary' | 'canaryUsers'> {
  const plan: JoinPlan = { labelled: [], aggregates: new Map(), canary: new Map(), canaryUsers: [] };
  const users = new Set<string>();
  for (const row of rows) {
    const tasks = tasksOf(row.versionId);
    if (!tasks || !inCanaryEpoch(row, epoch)) continue;
    addPrediction(plan, row, tasks, epoch, 1, false);
    if (users.has(`${row.versionId}\u0000${row.userId}`)) continue;
    users.add(`${row.versionId}\u0000${row.userId}`);
    plan.canaryUsers.push({ versionId: row.versionId, userId: row.userId });
  }
  return plan;
}

/**
 * One labelled prediction, `weight` times (−1 retracts it), into the epoch's state when it is one of its sides', and
 * (`windowed`) into its minute's, hour's and day's aggregates.
 */
function addPrediction(
  plan: JoinPlan,
  row: LabelledPrediction,
  tasks: VersionTasks,
  epoch: JoinInputs['epoch'],
  weight: number,
  windowed = true,
): void {
  const canary = inCanaryEpoch(row, epoch);
  tasks.names.forEach((task, t) => {
    const score = row.scores[t];
    const label = row.labels[task];
    if (typeof score !== 'number' || !Number.isFinite(score) || typeof label !== 'number') return;
    if (windowed)
      for (const granularity of Object.keys(GRANULARITY_MS) as Granularity[])
        aggregateOf(plan, row.versionId, task, tasks.types[t], granularity, row.loggedAt).add(0, score, label, weight);
    if (canary) {
      const key = `${row.versionId}\u0000${task}`;
      let entry = plan.canary.get(key);
      if (!entry)
        plan.canary.set(
          key,
          (entry = {
            versionId: row.versionId,
            task,
            delta: taskType({ type: tasks.types[t] }).aggregate(POLICY_USER_BUCKETS),
          }),
        );
      entry.delta.add(userCluster(row.userId, POLICY_USER_BUCKETS), score, label, weight);
    }
  });
}

/** Each request's AUC per AUC task (binary) over its labelled items (when both labels occur), `weight` times. */
function addRequests(
  plan: JoinPlan,
  inputs: JoinInputs,
  requests: Map<string, LabelledPrediction[]>,
  weight: number,
): void {
  for (const rows of requests.values()) {
    const { versionId, loggedAt } = rows[0];
    const tasks = inputs.tasksOf(versionId);
    if (!tasks) continue;
    tasks.names.forEach((task, t) => {
      const type = tasks.types[t];
      if (taskType({ type }).metric !== 'auc') return;
      const scores: number[] = [];
      const labels: number[] = [];
      for (const row of rows) {
        const score = row.scores[t];
        const label = row.labels[task];
        if (typeof score !== 'number' || !Number.isFinite(score) || typeof label !== 'number') continue;
        scores.push(score);
        labels.push(label);
      }
      const requestAuc = scores.length > 1 ? auc(scores, labels) : NaN;
      if (Number.isNaN(requestAuc)) return;
      for (const granularity of Object.keys(GRANULARITY_MS) as Granularity[]) {
        const aggregate = aggregateOf(plan, versionId, task, type, granularity, loggedAt);
        if (aggregate instanceof BinaryAggregate) aggregate.addRequest(requestAuc, scores.length, weight);
      }
    });
  }
}

function aggregateOf(
  plan: JoinPlan,
  versionId: number,
  task: string,
  type: TaskTypeName,
  granularity: Granularity,
  at: Date,
): TaskAggregate {
  const start = periodStart(at, granularity);
  const key = aggregateKey(versionId, task, granularity, start);
  let entry = plan.aggregates.get(key);
  if (!entry) {
    entry = { versionId, task, granularity, periodStart: start, delta: taskType({ type }).aggregate(1) };
    plan.aggregates.set(key, entry);
  }
  return entry.delta;
}

export function aggregateKey(versionId: number, task: string, granularity: Granularity, start: Date): string {
  return `${versionId}\u0000${task}\u0000${granularity}\u0000${start.getTime()}`;
}

/** The rows of each touched request, per version and time it was served (a reused request id serves several). */
function groupByRequest(rows: Iterable<LabelledPrediction>, touched: Set<string>): Map<string, LabelledPrediction[]> {
  const groups = new Map<string, LabelledPrediction[]>();
  for (const row of rows) {
    const key = requestKey(row);
    if (!touched.has(key)) continue;
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

function inCanaryEpoch(row: LabelledPrediction, epoch: JoinInputs['epoch']): boolean {
  return (
    epoch !== undefined &&
    (row.versionId === epoch.canaryVersionId || row.versionId === epoch.productionVersionId) &&
    row.loggedAt >= epoch.since
  );
}

function rowKey(row: LoggedPrediction | LabelledPrediction): string {
  return `${servedKey(row)}\u0000${row.versionId}`;
}

function requestKey(row: LabelledPrediction): string {
  return `${row.requestId}\u0000${row.userId}\u0000${row.versionId}\u0000${row.loggedAt.getTime()}`;
}

function sameLabels(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
