import { TaskSpec } from './model-spec.schema';

type Tasks = readonly Pick<TaskSpec, 'name' | 'conditionalOn' | 'dependsOn' | 'sampleSpace'>[];

const indexOf = (tasks: Tasks, name: string | undefined) =>
  name === undefined ? -1 : tasks.findIndex((t) => t.name === name);

/** Per task, the index of the previous step of its funnel — the task it is conditional on (ESMM) or depends on (AITM) — or -1. */
export function parentTasks(tasks: Tasks): number[] {
  return tasks.map((t) => indexOf(tasks, t.conditionalOn ?? t.dependsOn));
}

/** Per task, the index of the task whose positives are its sample space, or -1 (every example). */
export function sampleSpaceTasks(tasks: Tasks): number[] {
  return tasks.map((t) => indexOf(tasks, t.sampleSpace));
}

/**
 * The tasks with a parent (ESMM's conditional tasks, AITM's steps) in spec order: the columns of
 * ScoreResult.conditional and of the ONNX output `conditional`, P(task | parent).
 */
export function conditionalTasks(tasks: Tasks): number[] {
  return parentTasks(tasks).flatMap((p, t) => (p < 0 ? [] : [t]));
}

/** Every task index, each parent before the tasks conditional on it (the spec has no cycle). */
export function parentFirst(tasks: Tasks): number[] {
  const parents = parentTasks(tasks);
  const order: number[] = [];
  const visit = (t: number) => {
    if (order.includes(t)) return;
    if (parents[t] >= 0) visit(parents[t]);
    order.push(t);
  };
  tasks.forEach((_, t) => visit(t));
  return order;
}

/**
 * One row's labels (NaN = missing), in place: a funnel step's missing label is 0 where its parent's is 0, since the
 * joint event cannot happen without the parent (a conversion is observed only after a click). Returns the step that
 * then is 1 where its parent is 0 (impossibleJointLabel), -1 when none.
 */
export function fillJointLabels(order: number[], parents: number[], labels: number[]): number {
  for (const t of order) if (parents[t] >= 0 && Number.isNaN(labels[t]) && labels[parents[t]] === 0) labels[t] = 0;
  return impossibleJointLabel(parents, labels);
}

/**
 * The first task whose label is 1 where its parent's is 0 (-1 when none): a joint event that cannot have happened
 * (a conversion without its click), which a model would learn as P(conversion) > P(click).
 */
export function impossibleJointLabel(parents: readonly number[], labels: ArrayLike<number>): number {
  return parents.findIndex((parent, t) => parent >= 0 && labels[t] === 1 && labels[parent] === 0);
}

/**
 * The rows (1) that have task t's label, restricted to where task `within`'s label is 1 (t's sample space, or its
 * parent's positives for the conditional event) unless `within` is -1.
 */
export function labelledRows(labels: readonly ArrayLike<number>[], t: number, within = -1): Uint8Array {
  return Uint8Array.from(labels[t], (y, i) => (Number.isNaN(y) || (within >= 0 && labels[within][i] !== 1) ? 0 : 1));
}
