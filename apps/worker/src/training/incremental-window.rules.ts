import type { Continuation } from '@app/registry';

import { TrainingInputError } from './training.errors';

const DAY_MS = 86_400_000;

/**
 * An incremental job's events: the new window; the late events (occurred before the window, in the lineage's history,
 * stored after the parent read its events: not in its snapshot `after`); and the older events it replays a share of,
 * drawn only from those the parent's snapshot `seen` holds (a late event is trained on once, as such).
 */
export interface IncrementalPlan {
  window: { from: string; to: string };
  late?: { from: string; to: string; after: string };
  replay?: { from: string; to: string; share: number; seen?: string };
}

/**
 * The window [continuation.from, to); with the parent's snapshot, the late events of [historyFrom, continuation.from)
 * it did not see; and, with a replay share, the older events drawn from: the lineage's, from its start but at most
 * `replayDays` before the window, to the window's start. `to` is after the window's start (a window that ends before
 * it starts holds no event: the caller sees to that).
 */
export function incrementalPlan(
  continuation: Continuation,
  to: string,
  share: number,
  replayDays: number,
): IncrementalPlan {
  const { from, historyFrom, seen } = continuation;
  if (!(share >= 0 && share <= 1)) throw new TrainingInputError(`source.replay must be in [0, 1], got ${share}`);
  const replayFrom = new Date(Math.max(Date.parse(historyFrom), Date.parse(from) - replayDays * DAY_MS)).toISOString();
  return {
    window: { from, to },
    ...(seen !== undefined &&
      Date.parse(historyFrom) < Date.parse(from) && { late: { from: historyFrom, to: from, after: seen } }),
    ...(share > 0 &&
      Date.parse(replayFrom) < Date.parse(from) && {
        replay: { from: replayFrom, to: from, share, ...(seen !== undefined && { seen }) },
      }),
  };
}

/** How many older events a window whose training slice holds `trainRows` replays. */
export function replayCount(share: number, trainRows: number): number {
  return Math.round(share * trainRows);
}
