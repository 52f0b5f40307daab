import { ONNX_FLOAT, ONNX_INT32, ONNX_INT64, OnnxGraphBuilder } from '../export/onnx-graph.builder';
import { Pooling } from '../model-spec/model-spec.schema';

/**
 * Sequence (multi-hot) features: a list of categories per row, looked up in an embedding table and pooled into one
 * vector (the network's part is in sequence.pooling.ts). Encoded rows are CSR (compressed sparse rows), so that a
 * batch is one gather and one segment reduction whatever the lengths. ONNX has no segment reduction, so the exported
 * graph takes the same rows padded to [batch, maxLength] with -1 and reduces under a mask.
 */

/**
 * The table is the feature's own (vocabulary or hash buckets, as for a categorical feature) or a shared one; with
 * attention pooling, the target's.
 */
export type SequenceFeatureState = {
  name: string;
  separator: string;
  embeddingDim: number;
  maxLength: number;
} & PoolingState &
  ({ vocab: string[] } | { hashBuckets: number } | { sharedEmbedding: string });

/** How a sequence feature is pooled; attention pooling's target and hidden layers with it. */
export type PoolingState =
  | { pooling: Exclude<Pooling, 'attention'>; attention?: undefined }
  | { pooling: 'attention'; attention: { target: string; units: number[] } };

/** The embedding table a sequence feature reads: its own or the categorical feature it shares. */
export function sequenceTable(state: SequenceFeatureState): string {
  return 'sharedEmbedding' in state ? state.sharedEmbedding : state.name;
}

/**
 * Widths of attention pooling's unit (DIN's activation unit, Zhou et al. KDD 2018): its input is a value's embedding
 * e, the target's t and their product e ⊙ t (3 × dim; DIN also feeds e − t, which a first layer reading e and t
 * already spans), then the hidden layers, then one linear output: the value's weight.
 */
export function attentionLayers(state: SequenceFeatureState): number[] {
  return [3 * state.embeddingDim, ...(state.attention?.units ?? []), 1];
}

/** The name of layer l of a sequence feature's attention unit (its `/kernel` and `/bias` weights). */
export function attentionLayerName(feature: string, l: number): string {
  return `attention/${feature}/dense${l}`;
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

/** A padded [N, maxLength] input's values gathered from `table` ([N, L, D]), and [N, L, 1]: 1 where a value is. */
function gatherPadded(g: OnnxGraphBuilder, table: string, input: string) {
  const mask = g.op('GreaterOrEqual', [input, g.initializer(`${input}/zero`, ONNX_INT32, [], [0])]);
  const ids = g.op('Where', [mask, input, `${input}/zero`]);
  const valueMask = g.op('Unsqueeze', [
    g.op('Cast', [mask], { to: ONNX_FLOAT }),
    g.initializer(`${input}/axis2`, ONNX_INT64, [1], [2]),
  ]);
  return { gathered: g.op('Gather', [table, ids]), valueMask };
}

/** The pooling as ONNX nodes over a padded [N, maxLength] int32 input; returns the [N, embeddingDim] value. */
export function exportSequencePooling(
  g: OnnxGraphBuilder,
  table: string,
  input: string,
  pooling: Exclude<Pooling, 'attention'>,
): string {
  const name = input;
  const { gathered, valueMask } = gatherPadded(g, table, input);
  const axis1 = g.initializer(`${name}/axis1`, ONNX_INT64, [1], [1]);
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

/**
 * Attention pooling as ONNX nodes (attentionPool's numbers): the list `input` [S, maxLength] (padded with -1) and
 * the target's rows `target` [N], in one `table`; S is N, or 1 for a request's list broadcast over its N candidates.
 * The unit's first layer is split by what it reads, e·K_e + t·K_t + (e ⊙ t)·K_p + b, so that a request computes its
 * list's e·K_e once, not per candidate; the product term and the layers after it are per candidate and value. With
 * an int8 table (its columns stored divided by `columnScales`) the kernels' rows take the factors back: once for e
 * and t, squared for e ⊙ t. Returns the pooled [N, embeddingDim] value, in the table's units as the other poolings.
 */
export function exportAttentionPooling(
  g: OnnxGraphBuilder,
  { table, input, target, feature }: { table: string; input: string; target: string; feature: string },
  unit: { kernel: Float32Array; bias: Float32Array }[],
  widths: number[],
  columnScales?: Float32Array,
): string {
  const [dim, units] = [widths[0] / 3, widths[1]];
  const layer = (l: number) => attentionLayerName(feature, l);
  const { gathered, valueMask } = gatherPadded(g, table, input); // [S, L, D], [S, L, 1]
  const axis1 = g.initializer(`${input}/axis1`, ONNX_INT64, [1], [1]);
  const targets = g.op('Unsqueeze', [g.op('Gather', [table, target]), axis1]); // [N, 1, D]
  const kernelRows = (part: number, role: string, power: number) => {
    const values = unit[0].kernel.slice(part * dim * units, (part + 1) * dim * units);
    if (columnScales) for (let i = 0; i < values.length; i++) values[i] *= columnScales[Math.floor(i / units)] ** power;
    return g.initializer(`${layer(0)}/kernel/${role}`, ONNX_FLOAT, [dim, units], values);
  };
  const first = g.op('Add', [
    g.op('Add', [
      g.op('MatMul', [gathered, kernelRows(0, 'element', 1)]),
      g.op('MatMul', [targets, kernelRows(1, 'target', 1)]),
    ]),
    g.op('MatMul', [g.op('Mul', [gathered, targets]), kernelRows(2, 'product', 2)]),
  ]);
  let h = g.op('Add', [first, g.initializer(`${layer(0)}/bias`, ONNX_FLOAT, [units], unit[0].bias)]);
  for (let l = 1; l < unit.length; l++) {
    const kernel = g.initializer(`${layer(l)}/kernel`, ONNX_FLOAT, [widths[l], widths[l + 1]], unit[l].kernel);
    const bias = g.initializer(`${layer(l)}/bias`, ONNX_FLOAT, [widths[l + 1]], unit[l].bias);
    h = g.op('Add', [g.op('MatMul', [g.op('Relu', [h]), kernel]), bias]);
  }
  // [N, L, 1] weights, the padding's zeroed; the weighted sum over the list.
  const weights = g.op('Mul', [h, valueMask]);
  return g.op('ReduceSum', [g.op('Mul', [gathered, weights]), axis1], { keepdims: 0 });
}
