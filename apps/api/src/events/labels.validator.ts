import type { FieldError } from '@app/common';
import type { ModelSpec } from '@app/mmoe';

/**
 * Checks labels against the tasks of the production spec: at least one per event, every name a task, a binary task's
 * label 0 or 1 (regression labels are already known to be finite numbers). Returns one error per problem.
 */
export function labelErrors(tasks: ModelSpec['tasks'], events: { labels: Record<string, number> }[]): FieldError[] {
  const types = new Map(tasks.map((t) => [t.name, t.type]));
  const known = tasks.map((t) => t.name).join(', ');
  return events.flatMap(({ labels }, i): FieldError[] => {
    const entries = Object.entries(labels);
    if (entries.length === 0)
      return [{ field: `events.${i}.labels`, message: `events.${i}.labels must name at least one task (${known})` }];
    return entries.flatMap(([name, value]): FieldError[] => {
      const field = `events.${i}.labels.${name}`;
      const type = types.get(name);
      if (type === undefined) return [{ field, message: `${field} is not a task of the production model (${known})` }];
      if (type === 'binary' && value !== 0 && value !== 1)
        return [{ field, message: `${field} must be 0 or 1 (binary task), got ${value}` }];
      return [];
    });
  });
}
