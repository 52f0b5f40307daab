import { parseSequence } from '../features/sequence.feature';
import { ModelSpec, SequenceFeatureSpec } from '../model-spec/model-spec.schema';
import { fillJointLabels, parentFirst, parentTasks } from '../model-spec/task-space.rules';
import { taskType } from '../tasks/task-types';
import { MAX_NUMBER_MAGNITUDE, MIN_SAMPLE_WEIGHT, parseBoundedNumber, parseNumber, RowError } from './row-error';

export { MAX_NUMBER_MAGNITUDE, MIN_SAMPLE_WEIGHT, parseBoundedNumber, parseNumber, RowError };

/** Growable typed column: a 1 GB CSV must not become an array of objects. */
class Column<T extends Float64Array | Int32Array> {
  private length = 0;
  constructor(private data: T) {}
  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new (this.data.constructor as new (n: number) => T)(Math.max(1024, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }
  get size(): number {
    return this.length;
  }
  values(): T {
    return this.data.subarray(0, this.length) as T;
  }
  /** Rows start..end as a view (no copy); a push to it copies first, so the original is never written through it. */
  slice(start: number, end: number): Column<T> {
    return Column.of(this.data.subarray(start, end) as T);
  }
  /** A full column over `data`, without copying it. */
  static of<T extends Float64Array | Int32Array>(data: T): Column<T> {
    const column = new Column(data);
    column.length = data.length;
    return column;
  }
}

/** A categorical column as ids into a per-column dictionary of the distinct raw strings (-1 = missing). */
export interface RawCategoricalColumn {
  ids: Int32Array;
  dictionary: string[];
}

/** A sequence column as CSR rows of ids into a per-column dictionary: row i is ids[offsets[i] .. offsets[i+1]). */
export interface RawSequenceColumn {
  offsets: Int32Array;
  ids: Int32Array;
  dictionary: string[];
}

/** A raw value as a feature holds it: a CSV cell, or a feature-store / event value (lists for sequence features). */
export type RawValue = string | number | boolean | readonly unknown[] | undefined | null;

/** One record read into a table's terms, not stored yet (see RawTable.read). */
export interface RawRow {
  numeric: number[];
  categorical: (string | undefined)[];
  sequences: string[][];
  labels: number[];
  /** 1 without a sample-weight column. */
  weight: number;
  group: unknown;
}

export interface RawTableOptions {
  /**
   * A column that groups rows for evaluation (user_id for GAUC); it need not be a feature. Its values are interned
   * into ids (-1 = missing), which is all that a grouped metric needs.
   */
  groupBy?: string;
}

/**
 * Raw (unfitted) training data in columns: numeric values and labels as numbers (NaN = missing), categorical values
 * as dictionary ids. Fitting and encoding work on this, so that a file is read once.
 */
export class RawTable {
  // Not readonly: slice() gives a view its own columns over the same buffers and dictionaries.
  private numeric: Column<Float64Array>[];
  private categorical: Column<Int32Array>[];
  private dictionaries: Map<string, number>[];
  private readonly sequenceSpecs: SequenceFeatureSpec[];
  private sequences: {
    offsets: Column<Int32Array>;
    ids: Column<Int32Array>;
    dictionary: Map<string, number>;
  }[];
  private labels: Column<Float64Array>[];
  private weights: Column<Float64Array> | undefined;
  private groups: Column<Int32Array> | undefined;
  private groupDictionary = new Map<string, number>();
  private rows = 0;
  /** Column index by feature name, per kind. */
  private readonly numericIndex: Map<string, number>;
  private readonly categoricalIndex: Map<string, number>;
  private readonly parents: number[];
  private readonly parentOrder: number[];

  constructor(
    readonly spec: ModelSpec,
    readonly options: RawTableOptions = {},
  ) {
    this.groups = options.groupBy === undefined ? undefined : new Column(new Int32Array(1024));
    const names = (type: string) => spec.features.filter((f) => f.type === type).map((f, i) => [f.name, i] as const);
    this.numericIndex = new Map(names('numeric'));
    this.categoricalIndex = new Map(names('categorical'));
    const numericCount = this.numericIndex.size;
    const categoricalCount = this.categoricalIndex.size;
    this.numeric = Array.from({ length: numericCount }, () => new Column(new Float64Array(1024)));
    this.categorical = Array.from({ length: categoricalCount }, () => new Column(new Int32Array(1024)));
    this.dictionaries = Array.from({ length: categoricalCount }, () => new Map<string, number>());
    this.sequenceSpecs = spec.features.filter((f) => f.type === 'sequence');
    this.sequences = this.sequenceSpecs.map(() => {
      const offsets = new Column(new Int32Array(1024));
      offsets.push(0);
      return { offsets, ids: new Column(new Int32Array(1024)), dictionary: new Map<string, number>() };
    });
    this.labels = spec.tasks.map(() => new Column(new Float64Array(1024)));
    this.weights = spec.training.sampleWeight === undefined ? undefined : new Column(new Float64Array(1024));
    this.parents = parentTasks(spec.tasks);
    this.parentOrder = parentFirst(spec.tasks);
  }

  get size(): number {
    return this.rows;
  }

  /**
   * Adds one record keyed by column name. Missing features and labels are allowed (empty or absent); a value that
   * cannot be read (text in a numeric column, a binary label other than 0/1) throws RowError before anything is
   * stored, so a skipped row leaves no trace.
   */
  add(record: Record<string, RawValue>): void {
    this.push(this.read(record));
  }

  /** Reads a record in this table's terms without storing it: throws RowError for a value that cannot be read. */
  read(record: Record<string, RawValue>): RawRow {
    const numeric: number[] = [];
    const categorical: (string | undefined)[] = [];
    const sequences: string[][] = [];
    for (const feature of this.spec.features) {
      const raw = record[feature.name];
      if (feature.type === 'numeric') {
        // Checked here, where a CLI error can still name the line; the table keeps the raw value.
        numeric.push(checkTransform(parseBoundedNumber(raw, feature.name), feature.transform, feature.name));
      } else if (feature.type === 'categorical')
        categorical.push(raw === undefined || raw === null || raw === '' ? undefined : String(raw));
      else sequences.push(readSequence(raw, feature));
    }
    const labels = this.spec.tasks.map((task) => taskType(task).parseLabel(record[task.label], task.label));
    if (this.parents.some((p) => p >= 0)) {
      const t = fillJointLabels(this.parentOrder, this.parents, labels);
      if (t >= 0) {
        const { tasks } = this.spec;
        const parent = tasks[this.parents[t]];
        throw new RowError(
          tasks[t].label,
          `is 1 where ${parent.label} is 0: task ${tasks[t].name} cannot happen without ${parent.name}`,
        );
      }
    }
    const group = this.options.groupBy === undefined ? undefined : record[this.options.groupBy];
    const { sampleWeight } = this.spec.training;
    const weight = sampleWeight === undefined ? 1 : parseWeight(record[sampleWeight], sampleWeight);
    return { numeric, categorical, sequences, labels, weight, group };
  }

  /** Stores a row read by read(): several tables can so take a record all or none of them. */
  push({ numeric, categorical, sequences, labels, weight, group }: RawRow): void {
    numeric.forEach((v, i) => this.numeric[i].push(v));
    categorical.forEach((v, i) => this.categorical[i].push(v === undefined ? -1 : intern(this.dictionaries[i], v)));
    sequences.forEach((values, i) => {
      const column = this.sequences[i];
      // The last maxLength values are all a model ever reads.
      const kept = values.slice(-this.sequenceSpecs[i].maxLength);
      for (const v of kept) column.ids.push(intern(column.dictionary, v));
      column.offsets.push(column.ids.size);
    });
    labels.forEach((v, i) => this.labels[i].push(v));
    this.weights?.push(weight);
    if (this.groups) this.groups.push(internGroup(this.groupDictionary, group));
    this.rows++;
  }

  /**
   * Rows start..end (by index, e.g. a held-out tail) as a table over the same column buffers and dictionaries: no value
   * is copied but a sequence column's offsets, rebased to its first row. Values seen only outside the slice stay in
   * its dictionaries, with no row using them.
   */
  slice(start: number, end = this.rows): RawTable {
    end = Math.min(Math.max(end, 0), this.rows);
    start = Math.min(Math.max(start, 0), end);
    const view = new RawTable(this.spec, this.options);
    view.numeric = this.numeric.map((c) => c.slice(start, end));
    view.categorical = this.categorical.map((c) => c.slice(start, end));
    view.dictionaries = this.dictionaries;
    view.sequences = this.sequences.map(({ offsets, ids, dictionary }) => {
      const rows = offsets.values().subarray(start, end + 1);
      const base = rows[0];
      return { offsets: Column.of(rows.map((o) => o - base)), ids: ids.slice(base, rows[rows.length - 1]), dictionary };
    });
    view.labels = this.labels.map((c) => c.slice(start, end));
    view.weights = this.weights?.slice(start, end);
    view.groups = this.groups?.slice(start, end);
    view.groupDictionary = this.groupDictionary;
    view.rows = end - start;
    return view;
  }

  numericColumns(): Float64Array[] {
    return this.numeric.map((c) => c.values());
  }

  numericColumn(feature: string): Float64Array {
    return this.numeric[this.indexOf(this.numericIndex, feature)].values();
  }

  categoricalColumn(feature: string): RawCategoricalColumn {
    const i = this.indexOf(this.categoricalIndex, feature);
    return { ids: this.categorical[i].values(), dictionary: [...this.dictionaries[i].keys()] };
  }

  private indexOf(index: Map<string, number>, feature: string): number {
    const i = index.get(feature);
    if (i === undefined) throw new Error(`the table has no column for feature "${feature}" of that type`);
    return i;
  }

  categoricalColumns(): RawCategoricalColumn[] {
    return this.categorical.map((c, i) => ({ ids: c.values(), dictionary: [...this.dictionaries[i].keys()] }));
  }

  sequenceColumns(): RawSequenceColumn[] {
    return this.sequences.map((c) => ({
      offsets: c.offsets.values(),
      ids: c.ids.values(),
      dictionary: [...c.dictionary.keys()],
    }));
  }

  labelColumns(): Float64Array[] {
    return this.labels.map((c) => c.values());
  }

  /** Each row's sample weight, when the spec names a sample-weight column. */
  weightColumn(): Float64Array | undefined {
    return this.weights?.values();
  }

  /** Group id per row (-1 = no value), when the table was made with `groupBy`. */
  groupIds(): Int32Array | undefined {
    return this.groups?.values();
  }
}

function intern(dictionary: Map<string, number>, value: string): number {
  let id = dictionary.get(value);
  if (id === undefined) {
    id = dictionary.size;
    dictionary.set(value, id);
  }
  return id;
}

/** A sequence value, or a RowError naming the feature. */
export function readSequence(raw: unknown, feature: Pick<SequenceFeatureSpec, 'name' | 'separator'>): string[] {
  try {
    return parseSequence(raw, feature.separator);
  } catch (e) {
    throw new RowError(feature.name, (e as Error).message);
  }
}

function internGroup(dictionary: Map<string, number>, raw: unknown): number {
  if (raw === undefined || raw === null || raw === '') return -1;
  return intern(dictionary, String(raw));
}

/** The value itself, or RowError when `transform` is not defined there (log1p: at or below -1). */
export function checkTransform(value: number, transform: 'log1p' | undefined, field: string): number {
  if (transform === 'log1p' && value <= -1) throw new RowError(field, `log1p needs a value > -1 (got ${value})`);
  return value;
}

/** Missing → 1 (an example like any other); a weight must be a finite number ≥ 0 (0 leaves the example out). */
function parseWeight(raw: unknown, field: string): number {
  const value = parseBoundedNumber(raw, field);
  if (Number.isNaN(value)) return 1;
  if (value < 0) throw new RowError(field, `a sample weight must be >= 0 (got ${value})`);
  if (value > 0 && value < MIN_SAMPLE_WEIGHT)
    throw new RowError(field, `a sample weight must be 0 or at least ${MIN_SAMPLE_WEIGHT} (got ${value})`);
  return value;
}
