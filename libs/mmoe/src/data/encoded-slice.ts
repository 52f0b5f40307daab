import { concatIds, type EncodedDataset, type FeatureEncoder } from './preprocessor';
import { parseNumber, RowError } from './raw-table';

/**
 * The encoded values of the features one source holds (the request context, the user, an item), the others marked
 * absent: a candidate's row is its item's slice over the user's over the context's, so each source is encoded once
 * per request (or once per cache lifetime for an item) and rows are assembled by copying.
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
  numerics.forEach(({ name }, j) => {
    if (!Object.hasOwn(record, name)) return;
    slice.present[j] = 1;
    try {
      slice.numeric[j] = encoder.encodeNumeric(j, parseNumber(record[name], name));
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      unreadable.push(name);
    }
  });
  categoricals.forEach(({ name }, j) => {
    if (!Object.hasOwn(record, name)) return;
    slice.present[width + j] = 1;
    try {
      slice.categorical[j] = encoder.encodeCategory(j, record[name]);
    } catch (error) {
      // Text in a bucketised numeric: the missing row.
      if (!(error instanceof RowError)) throw error;
      unreadable.push(name);
    }
  });
  sequences.forEach(({ name }, j) => {
    if (!Object.hasOwn(record, name)) return;
    slice.present[scalars + j] = 1;
    try {
      slice.sequences[j] = encoder.encodeSequence(j, record[name]);
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      unreadable.push(name);
    }
  });
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

/** One row per item: the item's slice over `shared`; an undefined item takes `shared` alone. */
export function assembleRows(shared: EncodedSlice, items: (EncodedSlice | undefined)[]): EncodedDataset {
  const size = items.length;
  const width = shared.numeric.length;
  const categories = shared.categorical.length;
  const numeric = new Float32Array(size * width);
  const categorical = Array.from({ length: categories }, () => new Int32Array(size));
  for (let i = 0; i < size; i++) {
    const item = items[i];
    const row = i * width;
    numeric.set(shared.numeric, row);
    for (let j = 0; j < categories; j++) categorical[j][i] = shared.categorical[j];
    if (!item) continue;
    for (let j = 0; j < width; j++) if (item.present[j]) numeric[row + j] = item.numeric[j];
    for (let j = 0; j < categories; j++) if (item.present[width + j]) categorical[j][i] = item.categorical[j];
  }
  const sequences = shared.sequences.map((values, j) => {
    const present = width + categories + j;
    const rows = items.map((item) => (item?.present[present] ? item.sequences[j] : values));
    const offsets = new Int32Array(size + 1);
    rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
    return { offsets, ids: concatIds(rows, offsets[size]) };
  });
  return { size, numericWidth: width, numeric, categorical, sequences, labels: [] };
}
