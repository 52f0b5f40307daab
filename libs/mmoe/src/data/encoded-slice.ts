import type { SequenceColumn } from '../features/sequence.feature';
import type { RequestSides } from '../model-spec/feature-side';
import { concatIds, type EncodedDataset, type FeatureEncoder } from './preprocessor';
import { parseBoundedNumber, RowError } from './raw-table';

/**
 * The encoded values of the features one source holds (the request context, the user, an item), the others marked
 * absent: each source is encoded once per request (or once per cache lifetime for an item), and a request is
 * assembled by copying (assembleRequest).
 */
export interface EncodedSlice {
  /** Standardised numerics, in preprocessing order (0 where absent). */
  numeric: Float32Array;
  /** Embedding rows, in preprocessing order (0 where absent). */
  categorical: Int32Array;
  /** Embedding rows per sequence feature, in preprocessing order (empty where absent). */
  sequences: Int32Array[];
  /** 1 where the source holds the feature: numerics first, then categoricals, then sequences. */
  present: Uint8Array;
}

export interface SliceEncoding {
  slice: EncodedSlice;
  /**
   * Features whose stored value cannot be read (text in a numeric feature, a value ≤ -1 under log1p, an object in a
   * sequence feature): they are encoded as missing (the training mean, the missing bucket, the empty list).
   */
  unreadable: string[];
}

/** A slice of a record, under the rules of FeatureEncoder.encodeRecords (missing → mean / OOV row). */
export function encodeSlice(encoder: FeatureEncoder, record: Record<string, unknown> | undefined): SliceEncoding {
  const { numeric: numerics, categorical: categoricals, sequence: sequences } = encoder.state;
  const width = numerics.length;
  const scalars = width + categoricals.length;
  // One buffer per slice: a cache of many thousands of them holds one allocation each, not three.
  const buffer = new ArrayBuffer(4 * scalars + scalars + sequences.length);
  const slice: EncodedSlice = {
    numeric: new Float32Array(buffer, 0, width),
    categorical: new Int32Array(buffer, 4 * width, categoricals.length),
    sequences: sequences.map(() => NO_VALUES),
    present: new Uint8Array(buffer, 4 * scalars),
  };
  const unreadable: string[] = [];
  if (!record) return { slice, unreadable };
  // A stored feature is marked present and encoded; one its type cannot read (a RowError) stays at its default.
  const read = (name: string, presentAt: number, encode: (value: unknown) => void) => {
    if (!Object.hasOwn(record, name)) return;
    slice.present[presentAt] = 1;
    try {
      encode(record[name]);
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      unreadable.push(name);
    }
  };
  numerics.forEach(({ name }, j) =>
    read(name, j, (value) => (slice.numeric[j] = encoder.encodeNumeric(j, parseBoundedNumber(value, name)))),
  );
  // Text in a bucketised numeric (a categorical of the encoder) is the missing row.
  categoricals.forEach(({ name }, j) =>
    read(name, width + j, (value) => (slice.categorical[j] = encoder.encodeCategory(j, value))),
  );
  sequences.forEach(({ name }, j) =>
    read(name, scalars + j, (value) => (slice.sequences[j] = encoder.encodeSequence(j, value))),
  );
  return { slice, unreadable };
}

const NO_VALUES = new Int32Array(0);

/** `over` where it holds a feature, else `base`: e.g. the user's slice over the request context's. */
export function overlaySlices(base: EncodedSlice, over: EncodedSlice): EncodedSlice {
  const width = base.numeric.length;
  const scalars = width + base.categorical.length;
  const slice: EncodedSlice = {
    numeric: base.numeric.slice(),
    categorical: base.categorical.slice(),
    sequences: base.sequences.slice(),
    present: base.present.slice(),
  };
  for (let j = 0; j < over.present.length; j++) {
    if (!over.present[j]) continue;
    slice.present[j] = 1;
    if (j < width) slice.numeric[j] = over.numeric[j];
    else if (j < scalars) slice.categorical[j - width] = over.categorical[j - width];
    else slice.sequences[j - scalars] = over.sequences[j - scalars];
  }
  return slice;
}

/**
 * One request as the request graph takes it: what every candidate shares (the user's and context's features) once,
 * the item-side columns per candidate.
 */
export interface RequestBatch {
  /** Candidates. */
  size: number;
  /** The user's slice over the context's; its shared-side columns are every candidate's. */
  shared: EncodedSlice;
  /** Item-side numerics, row-major [size × RequestSides.numeric.item]. */
  numeric: Float32Array;
  /** Per item-side categorical feature (RequestSides.categorical.item), a row per candidate. */
  categorical: Int32Array[];
  /** Per item-side sequence feature (RequestSides.sequence.item). */
  sequences: SequenceColumn[];
}

/**
 * The candidates' item-side columns, each from its item's slice, else from `shared` (an item-side feature the user
 * or context holds, as a request could always give); an undefined item takes `shared` alone. Shared-side features
 * come from `shared` only and are not copied per candidate.
 */
export function assembleRequest(
  sides: RequestSides,
  shared: EncodedSlice,
  items: (EncodedSlice | undefined)[],
): RequestBatch {
  const size = items.length;
  const width = shared.numeric.length;
  const scalars = width + shared.categorical.length;
  const numerics = sides.numeric.item;
  const numeric = new Float32Array(size * numerics.length);
  for (let i = 0, o = 0; i < size; i++) {
    const item = items[i];
    for (const j of numerics) numeric[o++] = item?.present[j] ? item.numeric[j] : shared.numeric[j];
  }
  // Filled by index: Int32Array.from(items, fn) goes through the iterator protocol, an object per element.
  const categorical = sides.categorical.item.map((j) => {
    const column = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      const item = items[i];
      column[i] = item?.present[width + j] ? item.categorical[j] : shared.categorical[j];
    }
    return column;
  });
  const sequences = sides.sequence.item.map((j) => {
    const rows = items.map((item) => (item?.present[scalars + j] ? item.sequences[j] : shared.sequences[j]));
    const offsets = new Int32Array(size + 1);
    rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
    return { offsets, ids: concatIds(rows, offsets[size]) };
  });
  return { size, shared, numeric, categorical, sequences };
}

/** The request as one full row per candidate (the row graph's and tfjs's input): shared columns repeated. */
export function expandRequest(sides: RequestSides, batch: RequestBatch): EncodedDataset {
  const { size, shared } = batch;
  const width = shared.numeric.length;
  const numeric = new Float32Array(size * width);
  for (let i = 0; i < size; i++) {
    numeric.set(shared.numeric, i * width);
    sides.numeric.item.forEach((j, k) => (numeric[i * width + j] = batch.numeric[i * sides.numeric.item.length + k]));
  }
  const categorical: Int32Array[] = Array.from(shared.categorical, (value) => new Int32Array(size).fill(value));
  sides.categorical.item.forEach((j, k) => (categorical[j] = batch.categorical[k]));
  const sequences = shared.sequences.map((ids): SequenceColumn => ({
    offsets: Int32Array.from({ length: size + 1 }, (_, i) => i * ids.length),
    ids: concatIds(Array<Int32Array>(size).fill(ids), size * ids.length),
  }));
  sides.sequence.item.forEach((j, k) => (sequences[j] = batch.sequences[k]));
  return { size, numericWidth: width, numeric, categorical, sequences, labels: [] };
}
