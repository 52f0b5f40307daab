import type { DatasetRecord } from './version-metrics';

/** Where a version's lineage of events stands, as an incremental job continuing from it reads it. */
export interface Continuation {
  /** Where the next window starts: where the version's training rows ended (its held-out events come next). */
  from: string;
  /** Where the lineage's events start: the window of the full retrain it descends from. */
  historyFrom: string;
  /**
   * The snapshot the version's events were read in (absent before it was recorded): the events it does not see were
   * stored after, and those that occurred before `from` are late for it (its child trains on them).
   */
  seen?: string;
}

/**
 * Where an incremental job continues a version's data, from what the version records (undefined for a version trained
 * from a file or uploaded). A version recorded before `trainedTo` continues from its window's end, and before
 * `historyFrom` its lineage starts at its own window; before `snapshot` no event is known to be late for it.
 */
export function continuationOf(dataset: DatasetRecord | undefined): Continuation | undefined {
  const window =
    dataset?.window ??
    (dataset?.source.kind === 'events' ? { from: dataset.source.from, to: dataset.source.to } : undefined);
  if (!dataset || !window) return undefined;
  return {
    from: dataset.trainedTo ?? window.to,
    historyFrom: dataset.historyFrom ?? window.from,
    ...(dataset.snapshot && { seen: dataset.snapshot }),
  };
}
