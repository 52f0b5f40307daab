import { ONNX_FLOAT, ONNX_INT32, ONNX_INT64, OnnxGraphBuilder } from '../export/onnx-graph.builder';
import { Pooling } from '../model-spec/model-spec.schema';

/**
 * Sequence (multi-hot) features: a list of categories per row, looked up in an embedding table and pooled into one
 * vector (the network's part is in sequence.pooling.ts). Encoded rows are CSR (compressed sparse rows), so that a
 * batch is one gather and one segment reduction whatever the lengths. ONNX has no segment reduction, so the exported
 * graph takes the same rows padded to [batch, maxLength] with -1 and reduces under a mask.
 */

/** The table is the feature's own (vocabulary or hash buckets, as for a categorical feature) or a shared one. */
export type SequenceFeatureState = {
  name: string;
  separator: string;
  embeddingDim: number;
  pooling: Pooling;
  maxLength: number;
} & ({ vocab: string[] } | { hashBuckets: number } | { sharedEmbedding: string });

/** The embedding table a sequence feature reads: its own or the categorical feature it shares. */
export function sequenceTable(state: SequenceFeatureState): string {
  return 'sharedEmbedding' in state ? state.sharedEmbedding : state.name;
}

/** Rows of one sequence feature: row i's embedding rows are ids[offsets[i] .. offsets[i+1]), at most maxLength. */
export interface SequenceColumn {
  offsets: Int32Array;
  ids: Int32Array;
}

/**
 * A raw value as its list of strings: a JSON array (feature store, events) or a string split on the separator (CSV);
 * missing and empty values are the empty list. Throws a message naming what is wrong; the caller names the field.
 */
export function parseSequence(raw: unknown, separator: string): string[] {
  if (raw === undefined || raw === null || raw === '') return [];
  if (Array.isArray(raw)) {
    return raw.map((v, i) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      throw new Error(`element ${i} is not a string`);
    });
  }
  if (typeof raw === 'number' && Number.isFinite(raw)) return [String(raw)];
  if (typeof raw !== 'string') throw new Error('must be a list of strings or a separated string');
  return raw
    .split(separator)
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** Copies the given rows (all by default) of a CSR column, keeping each row's last maxLength values. */
export function selectRows(
  column: { offsets: Int32Array; ids: Int32Array },
  maxLength: number,
  rows: ArrayLike<number> | undefined,
  size: number,
  map: (id: number) => number = (id) => id,
): SequenceColumn {
  const rowAt = rows ? (i: number) => rows[i] : (i: number) => i;
  const offsets = new Int32Array(size + 1);
  for (let i = 0; i < size; i++) {
    const r = rowAt(i);
    offsets[i + 1] = offsets[i] + Math.min(maxLength, column.offsets[r + 1] - column.offsets[r]);
  }
  const ids = new Int32Array(offsets[size]);
  for (let i = 0; i < size; i++) {
    const r = rowAt(i);
    const end = column.offsets[r + 1];
    for (let k = offsets[i], src = end - (offsets[i + 1] - offsets[i]); k < offsets[i + 1]; k++, src++)
      ids[k] = map(column.ids[src]);
  }
  return { offsets, ids };
}

/** Padding of the ONNX input: no value. */
export const SEQUENCE_PAD = -1;

/** Rows start..end as the ONNX input: [rows, maxLength], left-aligned, padded with SEQUENCE_PAD. */
export function padSequences(column: SequenceColumn, start: number, end: number, maxLength: number): Int32Array {
  const out = new Int32Array((end - start) * maxLength).fill(SEQUENCE_PAD);
  for (let i = start; i < end; i++)
    out.set(column.ids.subarray(column.offsets[i], column.offsets[i + 1]), (i - start) * maxLength);
  return out;
}

/** The pooling as ONNX nodes over a padded [N, maxLength] int32 input; returns the [N, embeddingDim] value. */
export function exportSequencePooling(
  g: OnnxGraphBuilder,
  table: string,
  input: string,
  pooling: Pooling,
  name: string,
): string {
  const mask = g.op('GreaterOrEqual', [input, g.initializer(`${name}/zero`, ONNX_INT32, [], [0])]);
  const ids = g.op('Where', [mask, input, `${name}/zero`]);
  const gathered = g.op('Gather', [table, ids]); // [N, L, D]
  const axis1 = g.initializer(`${name}/axis1`, ONNX_INT64, [1], [1]);
  const valueMask = g.op('Unsqueeze', [
    g.op('Cast', [mask], { to: ONNX_FLOAT }),
    g.initializer(`${name}/axis2`, ONNX_INT64, [1], [2]),
  ]); // [N, L, 1]
  const count = g.op('ReduceSum', [valueMask, axis1], { keepdims: 1 }); // [N, 1, 1]
  const one = () => g.initializer(`${name}/one`, ONNX_FLOAT, [], [1]);
  if (pooling === 'max') {
    // Padding is pushed far below any value, and a row without values is zeroed afterwards.
    const offset = g.op('Mul', [g.op('Sub', [valueMask, one()]), g.initializer(`${name}/big`, ONNX_FLOAT, [], [1e30])]);
    const max = g.op('ReduceMax', [g.op('Add', [gathered, offset])], { axes: [1], keepdims: 0 });
    return g.op('Mul', [max, g.op('Min', [g.op('Squeeze', [count, axis1]), `${name}/one`])]);
  }
  // mean: each value scaled by 1/length before the sum, in the order tfjs computes it (parity to float rounding).
  const weights = pooling === 'sum' ? valueMask : g.op('Div', [valueMask, g.op('Max', [count, one()])]);
  return g.op('ReduceSum', [g.op('Mul', [gathered, weights]), axis1], { keepdims: 0 });
}
