import type { FieldError } from '@app/common';
import { fillJointLabels, parentFirst, parentTasks, taskType, type ModelSpec } from '@app/mmoe/serving';

/**
 * Checks labels against the tasks of the production spec: at least one per event, every name a task, each label one
 * its task type accepts (TaskType.eventLabelProblem: a binary task's 0 or 1; every label is already known to be a
 * finite number). Returns one error per problem.
 */
export function labelErrors(tasks: ModelSpec['tasks'], events: { labels: Record<string, number> }[]): FieldError[] {
  const types = new Map(tasks.map((t) => [t.name, taskType(t)]));
  const known = tasks.map((t) => t.name).join(', ');
  const parents = parentTasks(tasks);
  const order = parentFirst(tasks);
  return events.flatMap(({ labels }, i): FieldError[] => {
    const entries = Object.entries(labels);
    if (entries.length === 0)
      return [{ field: `events.${i}.labels`, message: `events.${i}.labels must name at least one task (${known})` }];
    const errors = entries.flatMap(([name, value]): FieldError[] => {
      const field = `events.${i}.labels.${name}`;
      const type = types.get(name);
      if (type === undefined) return [{ field, message: `${field} is not a task of the production model (${known})` }];
      const problem = type.eventLabelProblem(value);
      return problem === undefined ? [] : [{ field, message: `${field} ${problem}` }];
    });
    if (errors.length > 0) return errors;
    // As training reads them: a funnel step of 1 whose parent is 0 (itself, or through a missing step) cannot be.
    const t = fillJointLabels(
      order,
      parents,
      tasks.map((task) => labels[task.name] ?? NaN),
    );
    if (t < 0) return [];
    const field = `events.${i}.labels.${tasks[t].name}`;
    const parent = tasks[parents[t]].name;
    return [{ field, message: `${field} is 1 where ${parent} is 0: ${tasks[t].name} cannot happen without ${parent}` }];
  });
}
