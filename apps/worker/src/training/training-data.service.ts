import { Injectable } from '@nestjs/common';

import { EventRepository, type TrainingRow } from '@app/db';
import { RawTable, type ModelSpec } from '@app/mmoe';
import type { CsvSource, EventsSource } from '@app/queue';

import { CsvFileRepository } from './csv-file.repository';
import {
  eventRecord,
  listsToRebuild,
  orderSplitIndex,
  readableByBoth,
  recordColumns,
  renamedLists,
  splitAt,
  timeSplitIndex,
  toTables,
  type FlatRecord,
  type SpecTables,
} from './dataset.rules';
import { unseenFrom } from './evaluation-gate.rules';
import { replayCount } from './incremental-window.rules';
import { TrainingInputError } from './training.errors';

/** Older events trained on beside a window (an incremental job's replay): `count` drawn at random from [from, to). */
export interface ReplaySample {
  from: string;
  to: string;
  count: number;
  seed: number;
}

/** An incremental job's late events: those of [from, to) that the parent's snapshot `after` did not hold. */
export interface LateEvents {
  from: string;
  to: string;
  after: string;
}

/** What an incremental job reads beside its window: its late events, and a replay share (its `seen`: see load). */
export interface OlderEvents {
  replay?: Omit<ReplaySample, 'count'> & { share: number; seen?: string };
  late?: LateEvents;
}

/** What a job reads beside its source: older events (an incremental job), and where production's training data ends. */
export interface LoadOptions extends OlderEvents {
  /** Production's `dataset.trainedTo`: the held-out rows from it on are those it has not trained on (events only). */
  productionTrainedTo?: string;
}

/** The held-out rows production has not trained on, when it trained on the slice's earlier ones: the gate's rows. */
export interface UnseenHoldout {
  trainedTo: string;
  /** In the candidate's terms (grouped as the slice is), and in production's. */
  holdout: RawTable;
  productionHoldout: RawTable;
}

export interface TrainingData extends SpecTables {
  /** Replayed events among the training rows (0 without replay). */
  replayed: number;
  /** Late events among the training rows (0 without them). */
  late: number;
  /** The snapshot the events were read in (pg_snapshot text; events only). */
  snapshot?: string;
  /** The held-out rows in production's terms (its spec), when it was given: to judge it on the candidate's slice. */
  productionHoldout?: RawTable;
  /** Set when production (given) trained on some of the held-out rows (LoadOptions.productionTrainedTo). */
  unseenByProduction?: UnseenHoldout;
  /** Where the held-out slice starts: the time of its first event, or its first usable CSV row (1-based, header excluded). */
  holdoutStart: string | number | null;
  /** Malformed CSV rows left out. */
  malformed: number;
}

/**
 * Reads a job's data source into the candidate's tables, split into the rows to train on and the later rows to judge
 * the model on (the held-out ones grouped by `groupBy`), and production's held-out table alike.
 */
@Injectable()
export class TrainingDataService {
  constructor(
    private readonly events: EventRepository,
    private readonly csv: CsvFileRepository,
  ) {}

  /**
   * Events only: `late` adds the late events to the training rows; `replay` adds `replay.share` per row of the
   * window's training slice, at most, of older events (with `replay.seen`, only of those that snapshot holds: a late
   * event is not drawn again). Neither ever enters the held-out slice. All are read in one snapshot, recorded.
   * `productionTrainedTo` sets `unseenByProduction` apart when it falls after the slice's first event.
   */
  load(
    source: EventsSource | CsvSource,
    spec: ModelSpec,
    production: ModelSpec | undefined,
    holdoutFraction: number,
    groupBy: string | undefined,
    more: LoadOptions = {},
  ): Promise<TrainingData> {
    return source.kind === 'events'
      ? this.fromEvents(source, spec, production, holdoutFraction, groupBy, more)
      : this.fromCsv(source, spec, production, holdoutFraction, groupBy);
  }

  private async fromEvents(
    source: EventsSource,
    spec: ModelSpec,
    production: ModelSpec | undefined,
    fraction: number,
    groupBy: string | undefined,
    { replay, late, productionTrainedTo }: LoadOptions,
  ): Promise<TrainingData> {
    const [from, to] = [instant(source.from, 'source.from'), instant(source.to, 'source.to')];
    if (from >= to)
      throw new TrainingInputError(`source.from (${source.from}) must be before source.to (${source.to})`);
    // Each event-fed list as it was when its event occurred, production's too.
    const { feeds, candidateRenames } = listsToRebuild(spec, production);
    const columns = recordColumns(spec);
    const record = (row: TrainingRow) => renamedLists(eventRecord(row, columns), candidateRenames);
    // Held-out events left out because production's spec cannot read them (the candidate's own are toTables's).
    let leftOut = 0;
    const read = await this.events.readInSnapshot(async (reads) => {
      const rows = await reads.window(from, to, feeds);
      const index = timeSplitIndex(
        rows.map((r) => r.occurredAt.getTime()),
        fraction,
      );
      const split = splitAt(rows.map(record), index);
      // Production is judged on the same events, each assembled as production reads it: those both specs read.
      let heldOutRows = rows.slice(index);
      let productionHeldOut: FlatRecord[] | undefined;
      if (production) {
        const columns = recordColumns(production);
        const theirs = heldOutRows.map((row) => eventRecord(row, columns));
        const both = readableByBoth(spec, production, split.holdout, theirs);
        leftOut = split.holdout.length - both.length;
        split.holdout = both.map((i) => split.holdout[i]);
        productionHeldOut = both.map((i) => theirs[i]);
        heldOutRows = both.map((i) => heldOutRows[i]);
      }
      const unseen = productionHeldOut
        ? unseenFrom(
            heldOutRows.map((r) => r.occurredAt.getTime()),
            productionTrainedTo,
          )
        : 0;
      const lateRows = late
        ? await reads.late(late.after, instant(late.from, 'late.from'), instant(late.to, 'late.to'), feeds)
        : [];
      const replayed = replay
        ? await reads.sample(
            instant(replay.from, 'replay.from'),
            instant(replay.to, 'replay.to'),
            replayCount(replay.share, split.train.length),
            replay.seed,
            feeds,
            replay.seen,
          )
        : [];
      // Older than the window: trained on before it, never held out.
      split.train.unshift(...[...replayed, ...lateRows].map(record));
      return {
        split,
        productionHeldOut,
        unseen,
        holdoutStart: rows[index]?.occurredAt.toISOString() ?? null,
        replayed: replayed.length,
        late: lateRows.length,
        snapshot: reads.snapshot,
      };
    });
    const { split, productionHeldOut, unseen, ...counts } = read;
    const heldOut = (tableSpec: ModelSpec, records: FlatRecord[]) =>
      toTables(tableSpec, { train: [], holdout: records }, groupBy).holdout;
    const tables = toTables(spec, split, groupBy);
    return {
      ...tables,
      skipped: tables.skipped + leftOut,
      productionHoldout: production && productionHeldOut && heldOut(production, productionHeldOut),
      ...(production &&
        productionHeldOut &&
        unseen > 0 && {
          unseenByProduction: {
            trainedTo: productionTrainedTo!,
            holdout: heldOut(spec, split.holdout.slice(unseen)),
            productionHoldout: heldOut(production, productionHeldOut.slice(unseen)),
          },
        }),
      malformed: 0,
      ...counts,
    };
  }

  /** Whether an events source holds any event (an incremental window may hold none yet). */
  hasEvents(source: EventsSource): Promise<boolean> {
    return this.events.anyBetween(instant(source.from, 'source.from'), instant(source.to, 'source.to'));
  }

  /**
   * One streaming pass into typed columns, split by row index: the file's size bounds the columns, never a list of
   * row objects. A row that production's table cannot read (a label of its own) is left out of both, so that both
   * slices hold the same rows.
   */
  private async fromCsv(
    source: CsvSource,
    spec: ModelSpec,
    production: ModelSpec | undefined,
    fraction: number,
    groupBy: string | undefined,
  ): Promise<TrainingData> {
    const specs = production ? [spec, production] : [spec];
    const loaded = await this.csv.read(
      source.path,
      specs.map((s) => new RawTable(s, { groupBy })),
    );
    const [table, productionTable] = loaded.tables;
    const index = orderSplitIndex(table.size, fraction);
    return {
      train: table.slice(0, index),
      holdout: table.slice(index),
      productionHoldout: productionTable?.slice(index),
      skipped: loaded.skipped - loaded.malformed,
      holdoutStart: index < table.size ? index + 1 : null,
      malformed: loaded.malformed,
      replayed: 0,
      late: 0,
    };
  }
}

function instant(value: string, field: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new TrainingInputError(`${field} is not a valid ISO timestamp: "${value}"`);
  return date;
}
