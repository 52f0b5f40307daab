import type { LabelledPrediction } from '@app/db';
import { binaryMetrics, gauc, regressionMetrics, type ModelSpec } from '@app/mmoe/serving';

export interface LiveBinaryMetrics {
  type: 'binary';
  count: number;
  auc: number | null;
  /** Impression-weighted mean of per-user AUCs over users who have both labels; null when no user has. */
  gauc: number | null;
  /** Users that took part in the GAUC. */
  gaucGroups: number;
  logloss: number | null;
  meanPrediction: number | null;
  labelRate: number | null;
}

export interface LiveRegressionMetrics {
  type: 'regression';
  count: number;
  rmse: number | null;
  mae: number | null;
  meanPrediction: number | null;
  meanLabel: number | null;
}

export type LiveTaskMetrics = LiveBinaryMetrics | LiveRegressionMetrics;

/** One version's labelled predictions of one task, in a form both the metrics and the policy's test read. */
export interface TaskRows {
  scores: Float64Array;
  labels: Float64Array;
  users: string[];
}

/** Per task, the predictions that have both a score and a label for it (an event may label some tasks only). */
export function taskRows(spec: ModelSpec, rows: LabelledPrediction[]): Record<string, TaskRows> {
  return Object.fromEntries(
    spec.tasks.map((task) => {
      const kept = rows.filter(
        (r) => typeof r.scores[task.name] === 'number' && typeof r.labels[task.name] === 'number',
      );
      return [
        task.name,
        {
          scores: Float64Array.from(kept, (r) => r.scores[task.name]),
          labels: Float64Array.from(kept, (r) => r.labels[task.name]),
          users: kept.map((r) => r.userId),
        },
      ];
    }),
  );
}

export function liveMetrics(spec: ModelSpec, rows: Record<string, TaskRows>): Record<string, LiveTaskMetrics> {
  return Object.fromEntries(
    spec.tasks.map((task) => {
      const { scores, labels, users } = rows[task.name];
      if (task.type === 'binary') {
        const m = binaryMetrics(scores, labels);
        // Per-user AUC, impression-weighted, over users with both labels: the AUC of the ranking each user sees.
        const grouped = gauc(scores, labels, internUsers(users));
        return [
          task.name,
          {
            type: 'binary',
            count: m.count,
            auc: finite(m.auc),
            gauc: finite(grouped.gauc),
            gaucGroups: grouped.groups,
            logloss: finite(m.logloss),
            meanPrediction: finite(m.meanPrediction),
            labelRate: finite(m.labelRate),
          } satisfies LiveBinaryMetrics,
        ];
      }
      const m = regressionMetrics(scores, labels);
      return [
        task.name,
        {
          type: 'regression',
          count: m.count,
          rmse: finite(m.rmse),
          mae: finite(m.mae),
          meanPrediction: finite(m.meanPrediction),
          meanLabel: finite(m.meanLabel),
        } satisfies LiveRegressionMetrics,
      ];
    }),
  );
}

/** Group ids for gauc(): each distinct user interned to a small integer. */
function internUsers(users: string[]): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(users, (user) => {
    let id = ids.get(user);
    if (id === undefined) ids.set(user, (id = ids.size));
    return id;
  });
}

/** JSON has no NaN: an undefined metric (one class only, no rows) is reported as null. */
export function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
