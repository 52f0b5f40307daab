import type { FeatureMap, TrainingRow } from '@app/db';
import {
  eventFeeds,
  itemFilledFeatures,
  lowerBound,
  RawTable,
  RowError,
  type EventFeed,
  type ModelSpec,
  type RawTableOptions,
  type TaskSpec,
} from '@app/mmoe';
import type { TrainingJobPayload } from '@app/queue';

import { TrainingInputError } from './training.errors';

/** Feature values and label columns by name, as a CSV row holds them. */
export type FlatRecord = Record<string, string | number | readonly string[] | null | undefined>;

/** The rows a model trains on and the later rows it is judged on. */
export interface SplitRecords {
  train: FlatRecord[];
  holdout: FlatRecord[];
}

export interface SpecTables {
  train: RawTable;
  holdout: RawTable;
  /** Records left out because a value could not be read (text in a numeric feature, a binary label other than 0/1). */
  skipped: number;
}

/** Where the candidate's list goes when production reads a feature of that name from another source. */
const CANDIDATE_LIST_PREFIX = 'candidate\u0000';

/** The event-fed lists a job rebuilds as of each event, for the candidate and for production's evaluation. */
export interface ListsToRebuild {
  feeds: EventFeed[];
  /** The candidate's lists rebuilt under a name of their own, by that name: its records read them as theirs. */
  candidateRenames: ReadonlyMap<string, string>;
}

/**
 * Production's lists under their names (a candidate that reads one of them as a plain feature is served it, so it
 * trains on it as of each event too), and the candidate's: under its name where production reads none of that name,
 * rebuilt once with production's where both have the same source (at the longer maxLength: each table keeps its own
 * last maxLength, as each served model reads its own), and apart where production reads that name from another
 * source (other events, or a PUT), so that each spec is judged on what it is served.
 */
export function listsToRebuild(spec: ModelSpec, production: ModelSpec | undefined): ListsToRebuild {
  const feeds = production ? eventFeeds(production) : [];
  const candidateRenames = new Map<string, string>();
  for (const own of eventFeeds(spec)) {
    const at = feeds.findIndex((f) => f.feature === own.feature);
    const theirs = feeds[at];
    if (theirs && theirs.task === own.task && theirs.itemFeature === own.itemFeature)
      feeds[at] = { ...theirs, maxLength: Math.max(theirs.maxLength, own.maxLength) };
    else if (production?.features.some((f) => f.name === own.feature)) {
      const apart = CANDIDATE_LIST_PREFIX + own.feature;
      feeds.push({ ...own, feature: apart });
      candidateRenames.set(apart, own.feature);
    } else feeds.push(own);
  }
  return { feeds, candidateRenames };
}

/** A record with its lists rebuilt apart under their own names (listsToRebuild). */
export function renamedLists(record: FlatRecord, renames: ReadonlyMap<string, string>): FlatRecord {
  if (renames.size === 0) return record;
  const renamed = { ...record };
  for (const [apart, name] of renames) renamed[name] = record[apart];
  return renamed;
}

/** What an event's record holds besides its features, for the spec that reads it (recordColumns). */
export interface RecordColumns {
  tasks: readonly Pick<TaskSpec, 'name' | 'label'>[];
  /** The spec's training.sampleWeight column, if any. */
  weightColumns: readonly string[];
  /** The features an item's stored value fills (itemFilledFeatures); the others come from the user and the context. */
  itemFilled: ReadonlySet<string>;
}

/** A spec's own: the item fills one spec's item-side features and not another's, so each spec has its records. */
export function recordColumns(spec: ModelSpec): RecordColumns {
  return {
    tasks: spec.tasks,
    weightColumns: spec.training.sampleWeight === undefined ? [] : [spec.training.sampleWeight],
    itemFilled: new Set(itemFilledFeatures(spec)),
  };
}

/**
 * One record per event, its features as scoring assembles them: its `user_id` and `item_id` (what GAUC groups by),
 * the event's context, the user's features over it, and the item's over both for the features an item fills (an
 * item's stored value under a user feature's name, which scoring never reads, must not reach training either); then
 * each task's label under the spec's label column (events carry labels by task name: one the event lacks stays
 * missing, which the loss masks out), and the event's weight under each weight column (none: the table reads 1).
 */
export function eventRecord(
  row: Pick<TrainingRow, 'userId' | 'itemId' | 'context' | 'userFeatures' | 'itemFeatures' | 'labels' | 'weight'>,
  { tasks, weightColumns, itemFilled }: RecordColumns,
): FlatRecord {
  const record: FlatRecord = { user_id: row.userId, item_id: row.itemId };
  put(record, row.context);
  put(record, row.userFeatures);
  put(record, row.itemFeatures, itemFilled);
  for (const task of tasks) record[task.label] = row.labels[task.name];
  for (const column of weightColumns) record[column] = row.weight;
  return record;
}

/**
 * `features` into `record` (only the `only` ones when given); booleans as the serving encoder reads them: as the
 * category "true"/"false" (and as no number).
 */
function put(record: FlatRecord, features: FeatureMap | null, only?: ReadonlySet<string>): void {
  if (!features) return;
  for (const [name, value] of Object.entries(features))
    if (!only || only.has(name)) record[name] = typeof value === 'boolean' ? String(value) : value;
}

/**
 * Where the held-out slice starts in rows sorted by time: at the first row in the last `fraction` of the time between
 * the first row and the last, so that the model is judged on data later than all it learnt from.
 */
export function timeSplitIndex(times: readonly number[], fraction: number): number {
  if (times.length === 0) return 0;
  return lowerBound(times, times[0] + (times[times.length - 1] - times[0]) * (1 - fraction));
}

/** Where the held-out slice starts when only the order of the rows tells their age (a CSV file). */
export function orderSplitIndex(size: number, fraction: number): number {
  return size - Math.round(size * fraction);
}

export function splitAt<T>(rows: readonly T[], index: number): { train: T[]; holdout: T[] } {
  return { train: rows.slice(0, index), holdout: rows.slice(index) };
}

/** The features `reader` needs that `data` (a spec's columns) does not hold under the same name and type. */
export function featuresMissing(reader: ModelSpec, data: ModelSpec): ModelSpec['features'] {
  return reader.features.filter((f) => !data.features.some((g) => g.name === f.name && g.type === f.type));
}

/**
 * The column GAUC groups by: the job's, else `user_id` for events, an incremental window's alike (every event has
 * one), else none.
 */
export function groupByOf(payload: Pick<TrainingJobPayload, 'groupBy' | 'source'>): string | undefined {
  return payload.groupBy ?? (payload.source.kind === 'csv' ? undefined : 'user_id');
}

/**
 * Whether a job's training holds back the seeded share of its rows it validates on (training.validationFraction), or
 * trains on them too: every job but an incremental one holds it back. An incremental job's child starts where its
 * data ends, so a row it held back would be trained on by no version of the lineage (a tenth of the newest events,
 * every step); with its few epochs there is little for early stopping to choose, and its calibration is fitted on
 * rows it trained on, as a refit's is.
 */
export function holdsValidation(payload: Pick<TrainingJobPayload, 'source'>): boolean {
  return payload.source.kind !== 'incremental';
}

/** The holdout fraction a job asks for (default 0.2), which must leave rows on both sides. */
export function holdoutFractionOf(requested: number | undefined): number {
  const fraction = requested ?? 0.2;
  if (!(fraction > 0 && fraction < 1))
    throw new TrainingInputError(`holdoutFraction must be in (0, 1), got ${fraction}`);
  return fraction;
}

/**
 * Both slices as tables of `spec`'s columns (the held-out one grouped by `groupBy`, for GAUC); a record with a value
 * that cannot be read is counted and left out.
 */
export function toTables(spec: ModelSpec, records: SplitRecords, groupBy?: string): SpecTables {
  let skipped = 0;
  const fill = (rows: FlatRecord[], options: RawTableOptions = {}): RawTable => {
    const table = new RawTable(spec, options);
    for (const row of rows) {
      try {
        table.add(row);
      } catch (e) {
        if (!(e instanceof RowError)) throw e;
        skipped++;
      }
    }
    return table;
  };
  return { train: fill(records.train), holdout: fill(records.holdout, { groupBy }), skipped };
}

/**
 * The indices of the held-out records that both the candidate's spec and production's read (`productionRecords[i]`
 * is record i assembled as production reads it): one either cannot read (a value or a label of its own) is left out
 * of both, so that the gate judges the two on the same events, as the CSV path does.
 */
export function readableByBoth(
  candidate: ModelSpec,
  production: ModelSpec,
  records: readonly FlatRecord[],
  productionRecords: readonly FlatRecord[],
): number[] {
  // Scratch tables: a row one of them took before the other refused it is never read.
  const [ours, theirs] = [new RawTable(candidate), new RawTable(production)];
  const reads = (table: RawTable, row: FlatRecord) => {
    try {
      table.add(row);
      return true;
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      return false;
    }
  };
  return records.flatMap((row, i) => (reads(ours, row) && reads(theirs, productionRecords[i]) ? [i] : []));
}

/**
 * GAUC groups the held-out rows by `groupBy`: a name no row has a value for (a typo, a column events do not carry)
 * would leave every row ungrouped and the metric empty, with the job otherwise reporting success.
 */
export function checkGroups(holdout: Pick<RawTable, 'size' | 'groupIds'>, groupBy: string | undefined): void {
  const groups = holdout.groupIds();
  if (groupBy !== undefined && groups && !groups.some((g) => g >= 0))
    throw new TrainingInputError(
      `groupBy: none of the ${holdout.size} held-out rows has a value for "${groupBy}" (events carry user_id, item_id and the spec's features)`,
    );
}

/**
 * Refuses data a model cannot learn from or be judged on: fewer than `minRows` usable rows, an empty slice, or a task
 * without a single label in either slice (its metrics would be undefined and the gate could not compare it).
 */
export function checkTables(spec: ModelSpec, tables: Pick<SpecTables, 'train' | 'holdout'>, minRows: number): void {
  const { train, holdout } = tables;
  const rows = train.size + holdout.size;
  if (rows < minRows)
    throw new TrainingInputError(
      `too little data: ${rows} usable rows, at least ${minRows} are needed (TRAINING_MIN_ROWS)`,
    );
  if (train.size < 2)
    throw new TrainingInputError(
      `the training slice has ${train.size} rows; the data covers too short a time to split`,
    );
  if (holdout.size === 0)
    throw new TrainingInputError('the held-out slice is empty; the data covers too short a time to split');
  for (const [slice, table] of [
    ['training', train],
    ['held-out', holdout],
  ] as const) {
    const labels = table.labelColumns();
    spec.tasks.forEach((task, t) => {
      if (!labels[t].some((y) => !Number.isNaN(y))) {
        throw new TrainingInputError(`task "${task.name}" has no labels in the ${slice} slice (label "${task.label}")`);
      }
    });
  }
}
