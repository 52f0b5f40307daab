import { ModelSpec } from '../model-spec/model-spec.schema';
import { fnv1a32 } from '../util/hash';
import { parseNumber, RawTable } from './raw-table';

export interface NumericFeatureState {
  name: string;
  mean: number;
  std: number;
}

/** Row 0 of every embedding table is the missing / out-of-vocabulary value. */
export type CategoricalFeatureState =
  { name: string; embeddingDim: number; vocab: string[] } | { name: string; embeddingDim: number; hashBuckets: number };

/** Regression targets are learnt standardised (stable gradients whatever the unit); binary ones as they are. */
export interface LabelState {
  task: string;
  mean: number;
  std: number;
}

export interface PreprocessingState {
  numeric: NumericFeatureState[];
  categorical: CategoricalFeatureState[];
  labels: LabelState[];
}

/** Model-ready rows: standardised numerics (row-major), embedding row per categorical feature, raw labels. */
export interface EncodedDataset {
  size: number;
  numericWidth: number;
  numeric: Float32Array;
  categorical: Int32Array[];
  /** One column per task, in spec order; NaN marks a missing label. */
  labels: Float32Array[];
}

export function embeddingRows(state: CategoricalFeatureState): number {
  return 'vocab' in state ? state.vocab.length + 1 : state.hashBuckets + 1;
}

/** FNV-1a over UTF-16 code units, into 1..buckets (row 0 stays the missing value). */
export function hashBucket(value: string, buckets: number): number {
  return (fnv1a32(value, 'utf16') % buckets) + 1;
}

/** Learns standardisation statistics and vocabularies from the given rows (all rows by default). */
export function fitPreprocessing(spec: ModelSpec, table: RawTable, rows?: Uint32Array): PreprocessingState {
  const numericSpecs = spec.features.filter((f) => f.type === 'numeric');
  const categoricalSpecs = spec.features.filter((f) => f.type === 'categorical');
  const numeric = table.numericColumns().map((values, i) => ({ name: numericSpecs[i].name, ...moments(values, rows) }));
  const categorical = table.categoricalColumns().map(({ ids, dictionary }, i): CategoricalFeatureState => {
    const f = categoricalSpecs[i];
    if (f.hashBuckets) return { name: f.name, embeddingDim: f.embeddingDim, hashBuckets: f.hashBuckets };
    const counts = new Uint32Array(dictionary.length);
    forEachRow(ids.length, rows, (r) => {
      if (ids[r] >= 0) counts[ids[r]]++;
    });
    const order = [...counts.keys()]
      .filter((id) => counts[id] >= f.minCount)
      .sort((a, b) => counts[b] - counts[a] || (dictionary[a] < dictionary[b] ? -1 : 1))
      .slice(0, f.maxVocab);
    return { name: f.name, embeddingDim: f.embeddingDim, vocab: order.map((id) => dictionary[id]) };
  });
  const labels = table.labelColumns().map((values, i) => {
    const task = spec.tasks[i];
    return task.type === 'regression'
      ? { task: task.name, ...moments(values, rows) }
      : { task: task.name, mean: 0, std: 1 };
  });
  return { numeric, categorical, labels };
}

/**
 * Turns records into model inputs with a fitted state: the one code path for training, evaluation and serving, so
 * a value is encoded the same way everywhere.
 */
export class FeatureEncoder {
  private readonly vocabIndex: (Map<string, number> | undefined)[];

  constructor(readonly state: PreprocessingState) {
    this.vocabIndex = state.categorical.map((c) =>
      'vocab' in c ? new Map(c.vocab.map((v, i) => [v, i + 1])) : undefined,
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
    table.numericColumns().forEach((values, j) => {
      const { mean, std } = this.state.numeric[j];
      for (let i = 0; i < size; i++) numeric[i * width + j] = standardise(values[rows ? rows[i] : i], mean, std);
    });
    const categorical = table.categoricalColumns().map(({ ids, dictionary }, j) => {
      // Encode each distinct string once, then map ids: O(distinct + rows).
      const lookup = Int32Array.from(dictionary, (value) => this.categoryIndex(j, value));
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) {
        const id = ids[rows ? rows[i] : i];
        out[i] = id < 0 ? 0 : lookup[id];
      }
      return out;
    });
    const labels = table
      .labelColumns()
      .map((values) => Float32Array.from({ length: size }, (_, i) => values[rows ? rows[i] : i]));
    return { size, numericWidth: width, numeric, categorical, labels };
  }

  /**
   * Encodes feature records (e.g. a user's and an item's features merged) for scoring; unknown keys are ignored and
   * missing ones take the training mean / the OOV row. Throws on a non-numeric value in a numeric feature.
   */
  encodeRecords(records: Record<string, unknown>[]): EncodedDataset {
    const size = records.length;
    const width = this.numericWidth;
    const numeric = new Float32Array(size * width);
    const categorical = this.state.categorical.map(() => new Int32Array(size));
    records.forEach((record, i) => {
      this.state.numeric.forEach(({ name }, j) => {
        numeric[i * width + j] = this.encodeNumeric(j, parseNumber(record[name], name));
      });
      this.state.categorical.forEach(({ name }, j) => {
        categorical[j][i] = this.encodeCategory(j, record[name]);
      });
    });
    return { size, numericWidth: width, numeric, categorical, labels: [] };
  }

  /** Numeric feature j's model input for a parsed value (NaN: missing). */
  encodeNumeric(feature: number, value: number): number {
    const { mean, std } = this.state.numeric[feature];
    return standardise(value, mean, std);
  }

  /** Categorical feature j's embedding row for a raw value (0: missing or out of vocabulary). */
  encodeCategory(feature: number, raw: unknown): number {
    return raw === undefined || raw === null || raw === '' ? 0 : this.categoryIndex(feature, String(raw));
  }

  private categoryIndex(feature: number, value: string): number {
    const state = this.state.categorical[feature];
    if ('hashBuckets' in state) return hashBucket(value, state.hashBuckets);
    return this.vocabIndex[feature]!.get(value) ?? 0;
  }
}

/** Missing numerics become the training mean, i.e. 0 after standardisation. */
function standardise(value: number, mean: number, std: number): number {
  return Number.isNaN(value) ? 0 : (value - mean) / std;
}

function moments(values: Float64Array, rows?: Uint32Array): { mean: number; std: number } {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  forEachRow(values.length, rows, (r) => {
    const v = values[r];
    if (Number.isNaN(v)) return;
    n++;
    sum += v;
    sumSq += v * v;
  });
  if (n === 0) return { mean: 0, std: 1 };
  const mean = sum / n;
  const variance = Math.max(0, sumSq / n - mean * mean);
  // A constant column would divide by zero; leave it centred and unscaled.
  return { mean, std: variance > 1e-12 ? Math.sqrt(variance) : 1 };
}

function forEachRow(size: number, rows: Uint32Array | undefined, fn: (row: number) => void): void {
  if (rows) for (let i = 0; i < rows.length; i++) fn(rows[i]);
  else for (let i = 0; i < size; i++) fn(i);
}
