import { PoolingState, selectRows, SequenceColumn, SequenceFeatureState } from '../features/sequence.feature';
import {
  CategoricalFeatureSpec,
  DEFAULT_ATTENTION_UNITS,
  DEFAULT_EMBEDDING_DIM,
  ModelSpec,
  NumericFeatureSpec,
} from '../model-spec/model-spec.schema';
import { taskType } from '../tasks/task-types';
import { fnv1a32 } from '../util/hash';
import { upperBound } from '../util/sorted';
import { checkTransform, parseBoundedNumber, RawTable, readSequence } from './raw-table';

export interface NumericFeatureState {
  name: string;
  /** Of the transformed values. */
  mean: number;
  std: number;
  /** Absent: the value as it is (and in artifacts from before transforms). */
  transform?: 'log1p';
}

/**
 * Row 0 of every embedding table is the missing / out-of-vocabulary value. A bucketised numeric feature is one of
 * these too (its rows are its buckets), so that the network, the export and serving treat it as any embedding.
 */
export type CategoricalFeatureState =
  | { name: string; embeddingDim: number; vocab: string[] }
  | { name: string; embeddingDim: number; hashBuckets: number }
  | { name: string; embeddingDim: number; buckets: number[] };

/** Regression targets are learnt standardised (stable gradients whatever the unit); binary ones as they are. */
export interface LabelState {
  task: string;
  mean: number;
  std: number;
}

export interface PreprocessingState {
  numeric: NumericFeatureState[];
  categorical: CategoricalFeatureState[];
  /** Absent in artifacts written before sequence features existed (read as none). */
  sequence: SequenceFeatureState[];
  labels: LabelState[];
}

/**
 * Model-ready rows: standardised numerics (row-major), embedding row per categorical feature, embedding rows per
 * sequence feature, raw labels.
 */
export interface EncodedDataset {
  size: number;
  numericWidth: number;
  numeric: Float32Array;
  categorical: Int32Array[];
  sequences: SequenceColumn[];
  /** One column per task, in spec order; NaN marks a missing label. */
  labels: Float32Array[];
  /** Each row's sample weight (training.sampleWeight); absent: every row weighs 1. */
  weights?: Float32Array;
}

/** A vocabulary (row i + 1 for vocab[i]), hash buckets or numeric boundaries; row 0 is the missing / OOV value. */
type Vocabulary = { vocab: string[] } | { hashBuckets: number } | { buckets: number[] };

export function embeddingRows(state: Vocabulary): number {
  if ('buckets' in state) return state.buckets.length + 2;
  return 'vocab' in state ? state.vocab.length + 1 : state.hashBuckets + 1;
}

/** A numeric feature's row: 0 missing, 1 below the first boundary, k + 1 from boundary k (1-based) on. */
export function bucketRow(value: number, buckets: readonly number[]): number {
  return Number.isNaN(value) ? 0 : upperBound(buckets, value) + 1;
}

/** log1p is defined above -1 only: RowError (a CLI row error with its line and column; missing when serving). */
function transformed(value: number, transform: NumericFeatureState['transform'], field: string): number {
  return transform === undefined ? value : Math.log1p(checkTransform(value, transform, field));
}

/** Maps raw values to embedding rows. */
class CategoryLookup {
  private readonly index: Map<string, number> | undefined;

  constructor(private readonly vocabulary: { vocab: string[] } | { hashBuckets: number }) {
    this.index = 'vocab' in vocabulary ? new Map(vocabulary.vocab.map((v, i) => [v, i + 1])) : undefined;
  }

  row(value: string): number {
    return this.index
      ? (this.index.get(value) ?? 0)
      : hashBucket(value, (this.vocabulary as { hashBuckets: number }).hashBuckets);
  }
}

/** FNV-1a over UTF-16 code units, into 1..buckets (row 0 stays the missing value). */
export function hashBucket(value: string, buckets: number): number {
  return (fnv1a32(value, 'utf16') % buckets) + 1;
}

/** Learns standardisation statistics and vocabularies from the given rows (all rows by default). */
export function fitPreprocessing(spec: ModelSpec, table: RawTable, rows?: Uint32Array): PreprocessingState {
  return fitPreprocessingReport(spec, table, rows).state;
}

/** A learnt vocabulary that reached maxVocab: the ids seen at least minCount times that it left out of vocabulary. */
export interface VocabularyOverflow {
  feature: string;
  /** Those ids, the least frequent of the rows' ids; each encodes as out of vocabulary (row 0). */
  leftOut: number;
}

/** fitPreprocessing, and the vocabularies that overflowed: a full table is no error, but it should not be silent. */
export function fitPreprocessingReport(
  spec: ModelSpec,
  table: RawTable,
  rows?: Uint32Array,
): { state: PreprocessingState; overflow: VocabularyOverflow[] } {
  const overflow: VocabularyOverflow[] = [];
  const state = fit(spec, table, rows, (feature, dictionary, counts, minCount, maxVocab) => {
    const ids = frequent(dictionary, counts, minCount, Infinity);
    if (ids.length > maxVocab) overflow.push({ feature, leftOut: ids.length - maxVocab });
    return ids.slice(0, maxVocab);
  });
  return { state, overflow };
}

/** A sequence feature's maxVocab when its spec sets none. */
export const SEQUENCE_MAX_VOCAB = 100_000;

/** What a warm start did to one learnt vocabulary. */
export interface VocabularyGrowth {
  feature: string;
  /** The parent's ids, which keep their rows. */
  before: number;
  /** Ids seen for the first time (at least minCount times), given new rows after the parent's. */
  added: number;
  /** Further new ids left out of vocabulary because the table reached maxVocab (the least frequent ones). */
  overflow: number;
}

/**
 * The preprocessing of a warm start from `parent` (whose spec is compatible with `spec`, see warm-start.rules):
 *   - each learnt vocabulary keeps the parent's ids at their rows and appends the ids first seen in these rows, most
 *     frequent first, while the table has room under maxVocab; a full table leaves the rest out of vocabulary (row 0)
 *     and never evicts an id, so that no row changes meaning (a full retrain refits the vocabulary from scratch);
 *   - numeric statistics and regression label scaling are the parent's: its first layer and towers were learnt on
 *     those scales, and refitting them would shift every input under weights that expect the old one;
 *   - hash buckets and numeric bucket boundaries are the spec's, equal to the parent's, so their rows carry over.
 */
export function growPreprocessing(
  parent: PreprocessingState,
  spec: ModelSpec,
  table: RawTable,
  rows?: Uint32Array,
): { state: PreprocessingState; growth: VocabularyGrowth[] } {
  const learnt = new Map(
    [...parent.categorical, ...parent.sequence].flatMap((s) => ('vocab' in s ? [[s.name, s.vocab] as const] : [])),
  );
  const growth: VocabularyGrowth[] = [];
  const state = fit(
    spec,
    table,
    rows,
    (feature, dictionary, counts, minCount, maxVocab) => {
      const before = learnt.get(feature) ?? [];
      const known = new Set(before);
      const fresh = frequent(dictionary, counts, minCount, Infinity).filter((value) => !known.has(value));
      const room = Math.max(0, maxVocab - before.length);
      growth.push({
        feature,
        before: before.length,
        added: Math.min(room, fresh.length),
        overflow: Math.max(0, fresh.length - room),
      });
      return [...before, ...fresh.slice(0, room)];
    },
    parent,
  );
  return { state, growth };
}

/** Chooses a learnt vocabulary from the counts of each distinct value of the fitted rows. */
type VocabularyRule = (
  feature: string,
  dictionary: string[],
  counts: Uint32Array,
  minCount: number,
  maxVocab: number,
) => string[];

/** Fits every feature's state on `rows`; `scales` (a parent's) gives the numeric statistics and label scaling instead. */
function fit(
  spec: ModelSpec,
  table: RawTable,
  rows: Uint32Array | undefined,
  vocabulary: VocabularyRule,
  scales?: Pick<PreprocessingState, 'numeric' | 'labels'>,
): PreprocessingState {
  const numeric =
    scales?.numeric ??
    standardisedFeatures(spec).map(({ name, transform }): NumericFeatureState => {
      const raw = table.numericColumn(name);
      const values = transform ? raw.map((v) => transformed(v, transform, name)) : raw;
      return { name, ...moments(values, rows), ...(transform ? { transform } : {}) };
    });
  const categorical = embeddedFeatures(spec).map((f): CategoricalFeatureState => {
    if (f.type === 'numeric')
      return { name: f.name, embeddingDim: f.embeddingDim ?? DEFAULT_EMBEDDING_DIM, buckets: f.buckets! };
    if (f.hashBuckets) return { name: f.name, embeddingDim: f.embeddingDim, hashBuckets: f.hashBuckets };
    const { ids, dictionary } = table.categoricalColumn(f.name);
    const counts = new Uint32Array(dictionary.length);
    forEachRow(ids.length, rows, (r) => {
      if (ids[r] >= 0) counts[ids[r]]++;
    });
    const vocab = vocabulary(f.name, dictionary, counts, f.minCount, f.maxVocab);
    return { name: f.name, embeddingDim: f.embeddingDim, vocab };
  });
  const sequenceSpecs = spec.features.filter((f) => f.type === 'sequence');
  const sequence = table.sequenceColumns().map(({ offsets, ids, dictionary }, i): SequenceFeatureState => {
    const f = sequenceSpecs[i];
    const pooling: PoolingState =
      f.pooling === 'attention'
        ? { pooling: 'attention', attention: { target: f.target!, units: f.attentionUnits ?? DEFAULT_ATTENTION_UNITS } }
        : { pooling: f.pooling };
    const common = { name: f.name, separator: f.separator, ...pooling, maxLength: f.maxLength };
    if (f.sharedEmbedding) {
      const shared = categorical.find((c) => c.name === f.sharedEmbedding)!;
      return { ...common, embeddingDim: shared.embeddingDim, sharedEmbedding: shared.name };
    }
    const embeddingDim = f.embeddingDim ?? DEFAULT_EMBEDDING_DIM;
    if (f.hashBuckets) return { ...common, embeddingDim, hashBuckets: f.hashBuckets };
    const counts = new Uint32Array(dictionary.length);
    forEachRow(offsets.length - 1, rows, (r) => {
      for (let k = offsets[r]; k < offsets[r + 1]; k++) counts[ids[k]]++;
    });
    const maxVocab = f.maxVocab ?? SEQUENCE_MAX_VOCAB;
    return { ...common, embeddingDim, vocab: vocabulary(f.name, dictionary, counts, f.minCount ?? 1, maxVocab) };
  });
  const labels =
    scales?.labels ??
    table.labelColumns().map((values, i) => {
      const task = spec.tasks[i];
      return { task: task.name, ...(taskType(task).standardised ? moments(values, rows) : { mean: 0, std: 1 }) };
    });
  return { numeric, categorical, sequence, labels };
}

/** Numeric features fed to the network as standardised values. */
function standardisedFeatures(spec: ModelSpec): NumericFeatureSpec[] {
  return spec.features.filter((f) => f.type === 'numeric' && f.buckets === undefined) as NumericFeatureSpec[];
}

/** Features looked up in an embedding row by row, in spec order: categorical and bucketised numeric ones. */
function embeddedFeatures(spec: ModelSpec) {
  return spec.features.filter((f) => f.type === 'categorical' || (f.type === 'numeric' && f.buckets !== undefined)) as (
    NumericFeatureSpec | CategoricalFeatureSpec
  )[];
}

/** The values seen at least minCount times, most frequent first (ties by value, so the order is reproducible). */
function frequent(dictionary: string[], counts: Uint32Array, minCount: number, maxVocab: number): string[] {
  return [...counts.keys()]
    .filter((id) => counts[id] >= minCount)
    .sort((a, b) => counts[b] - counts[a] || (dictionary[a] < dictionary[b] ? -1 : 1))
    .slice(0, maxVocab)
    .map((id) => dictionary[id]);
}

/**
 * Turns records into model inputs with a fitted state: the one code path for training, evaluation and serving, so
 * a value is encoded the same way everywhere.
 */
export class FeatureEncoder {
  /** Undefined for bucketised numerics, which are looked up by value. */
  private readonly categories: (CategoryLookup | undefined)[];
  private readonly sequenceCategories: CategoryLookup[];

  constructor(readonly state: PreprocessingState) {
    this.categories = state.categorical.map((c) => ('buckets' in c ? undefined : new CategoryLookup(c)));
    this.sequenceCategories = state.sequence.map((s) =>
      'sharedEmbedding' in s
        ? this.categories[state.categorical.findIndex((c) => c.name === s.sharedEmbedding)]!
        : new CategoryLookup(s),
    );
  }

  get numericWidth(): number {
    return this.state.numeric.length;
  }

  /** Encodes the given rows of a raw table (all by default). */
  encodeTable(table: RawTable, rows?: Uint32Array): EncodedDataset {
    const size = rows ? rows.length : table.size;
    const width = this.numericWidth;
    const numeric = new Float32Array(size * width);
    this.state.numeric.forEach(({ name, mean, std, transform }, j) => {
      const values = table.numericColumn(name);
      for (let i = 0; i < size; i++)
        numeric[i * width + j] = standardise(transformed(values[rows ? rows[i] : i], transform, name), mean, std);
    });
    const categorical = this.state.categorical.map((c, j) => {
      const out = new Int32Array(size);
      if ('buckets' in c) {
        const values = table.numericColumn(c.name);
        for (let i = 0; i < size; i++) out[i] = bucketRow(values[rows ? rows[i] : i], c.buckets);
        return out;
      }
      // Encode each distinct string once, then map ids: O(distinct + rows).
      const { ids, dictionary } = table.categoricalColumn(c.name);
      const lookup = Int32Array.from(dictionary, (value) => this.categories[j]!.row(value));
      for (let i = 0; i < size; i++) {
        const id = ids[rows ? rows[i] : i];
        out[i] = id < 0 ? 0 : lookup[id];
      }
      return out;
    });
    const sequences = table.sequenceColumns().map((column, j) => {
      const lookup = Int32Array.from(column.dictionary, (value) => this.sequenceCategories[j].row(value));
      return selectRows(column, this.state.sequence[j].maxLength, rows, size, (id) => lookup[id]);
    });
    const select = (values: Float64Array) => Float32Array.from({ length: size }, (_, i) => values[rows ? rows[i] : i]);
    const labels = table.labelColumns().map(select);
    const weights = table.weightColumn();
    return {
      size,
      numericWidth: width,
      numeric,
      categorical,
      sequences,
      labels,
      ...(weights && { weights: select(weights) }),
    };
  }

  /**
   * Encodes feature records (e.g. a user's and an item's features merged) for scoring; unknown keys are ignored and
   * missing ones take the training mean / the OOV row / the empty list. Throws RowError on a value a feature cannot
   * read (text in a numeric feature, a list of non-strings in a sequence feature).
   */
  encodeRecords(records: Record<string, unknown>[]): EncodedDataset {
    const size = records.length;
    const width = this.numericWidth;
    const numeric = new Float32Array(size * width);
    const categorical = this.state.categorical.map(() => new Int32Array(size));
    const sequences = this.state.sequence.map(() => ({ offsets: new Int32Array(size + 1), ids: [] as Int32Array[] }));
    records.forEach((record, i) => {
      this.state.numeric.forEach(({ name }, j) => {
        numeric[i * width + j] = this.encodeNumeric(j, parseBoundedNumber(record[name], name));
      });
      this.state.categorical.forEach(({ name }, j) => {
        categorical[j][i] = this.encodeCategory(j, record[name]);
      });
      this.state.sequence.forEach(({ name }, j) => {
        const column = sequences[j];
        const ids = this.encodeSequence(j, record[name]);
        column.ids.push(ids);
        column.offsets[i + 1] = column.offsets[i] + ids.length;
      });
    });
    return {
      size,
      numericWidth: width,
      numeric,
      categorical,
      sequences: sequences.map((s) => ({ offsets: s.offsets, ids: concatIds(s.ids, s.offsets[size]) })),
      labels: [],
    };
  }

  /** Numeric feature j's model input for a parsed value (NaN: missing); RowError for a value log1p cannot take. */
  encodeNumeric(feature: number, value: number): number {
    const { name, mean, std, transform } = this.state.numeric[feature];
    return standardise(transformed(value, transform, name), mean, std);
  }

  /**
   * Sequence feature j's embedding rows for a raw value: its last maxLength values, [] when missing. A JSON array
   * (feature store, requests) or a separated string (as in a CSV); RowError for anything else.
   */
  encodeSequence(feature: number, raw: unknown): Int32Array {
    const state = this.state.sequence[feature];
    const values = readSequence(raw, state);
    const lookup = this.sequenceCategories[feature];
    const from = Math.max(0, values.length - state.maxLength);
    return Int32Array.from({ length: values.length - from }, (_, k) => lookup.row(values[from + k]));
  }

  /**
   * Categorical feature j's embedding row for a raw value (0: missing or out of vocabulary); a bucketised numeric's
   * bucket, with RowError for a value that is not a number.
   */
  encodeCategory(feature: number, raw: unknown): number {
    const lookup = this.categories[feature];
    if (!lookup) {
      const { name, buckets } = this.state.categorical[feature] as { name: string; buckets: number[] };
      return bucketRow(parseBoundedNumber(raw, name), buckets);
    }
    return raw === undefined || raw === null || raw === '' ? 0 : lookup.row(String(raw));
  }
}

export function concatIds(parts: Int32Array[], total: number): Int32Array {
  const out = new Int32Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Farthest a standardised numeric goes from 0. n training values are never more than √(n − 1) deviations from their
 * mean (Samuelson's inequality), so no training set below 10^12 rows reaches it; a value read at serving time can be
 * any number of deviations away (a feature whose training values spread over 1e-20 given 1e18), and past float32's
 * range it made every score NaN.
 */
export const MAX_STANDARDISED = 1e6;

/** Missing numerics become the training mean, i.e. 0 after standardisation. */
function standardise(value: number, mean: number, std: number): number {
  if (Number.isNaN(value)) return 0;
  const z = (value - mean) / std;
  return z > MAX_STANDARDISED ? MAX_STANDARDISED : z < -MAX_STANDARDISED ? -MAX_STANDARDISED : z;
}

/**
 * Mean and standard deviation in two passes, the first summing offsets from the first value: the one-pass
 * Σv² / n − mean² cancels when the mean is large beside the spread (µs timestamps, 1e15 ± 500: a std of 4e7, or of 1,
 * and the feature erased). A constant column would divide by zero: it is left centred and unscaled.
 */
function moments(values: Float64Array, rows?: Uint32Array): { mean: number; std: number } {
  let n = 0;
  let first = NaN;
  let offsets = 0;
  let min = Infinity;
  let max = -Infinity;
  forEachRow(values.length, rows, (r) => {
    const v = values[r];
    if (Number.isNaN(v)) return;
    if (n++ === 0) first = v;
    offsets += v - first;
    if (v < min) min = v;
    if (v > max) max = v;
  });
  if (n === 0) return { mean: 0, std: 1 };
  const mean = first + offsets / n;
  if (min === max) return { mean, std: 1 };
  let squares = 0;
  forEachRow(values.length, rows, (r) => {
    const v = values[r];
    if (!Number.isNaN(v)) squares += (v - mean) * (v - mean);
  });
  const std = Math.sqrt(squares / n);
  // A spread within rounding of the values (0.1 + 0.2 beside 0.3), or one whose squares underflowed, is no spread:
  // scaled by it, a value served later would be astronomically far from the training ones.
  return { mean, std: std > 16 * Number.EPSILON * Math.max(-min, max) ? std : 1 };
}

function forEachRow(size: number, rows: Uint32Array | undefined, fn: (row: number) => void): void {
  if (rows) for (let i = 0; i < rows.length; i++) fn(rows[i]);
  else for (let i = 0; i < size; i++) fn(i);
}
