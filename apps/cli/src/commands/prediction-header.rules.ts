import { conditionalTasks, type TaskSpec } from '@app/mmoe';

/**
 * The columns `cli predict` writes: the input's line, the id column when asked for, each task's score, and for ESMM
 * and AITM tasks P(task | previous step) as `<task>|<parent>`. The line's column is `line`, or `_line` (`__line` …)
 * when a task or the id column is named so: a CSV with two columns of one name reads as neither. An id column named
 * like a score's column is an error: the caller chose it, and would read the wrong one.
 */
export function predictionHeader(tasks: readonly TaskSpec[], idColumn?: string): string[] {
  const scores = [
    ...tasks.map((t) => t.name),
    ...conditionalTasks(tasks).map((t) => `${tasks[t].name}|${tasks[t].conditionalOn ?? tasks[t].dependsOn}`),
  ];
  if (idColumn && scores.includes(idColumn))
    throw new Error(`--id-column ${idColumn}: the output already has a column of that name`);
  const named = idColumn ? [idColumn, ...scores] : scores;
  let line = 'line';
  while (named.includes(line)) line = `_${line}`;
  return [line, ...named];
}
