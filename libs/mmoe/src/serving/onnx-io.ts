import { expandRequest, type RequestBatch } from '../data/encoded-slice';
import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import { ONNX_BATCH_DIM, ONNX_SHARED_DIM, type GraphLayout } from '../export/onnx.exporter';
import { padSequences } from '../features/sequence.feature';
import { requestSides, rowSides, type RequestSides } from '../model-spec/feature-side';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { conditionalTasks } from '../model-spec/task-space.rules';
import { topologyOf } from '../model/topology';
import type { WireTensor } from './inference.protocol';
import { ScoreResult } from './scorer';

/** The graph inputs of rows [start, end) of what is scored. */
export interface Feeder {
  size: number;
  feeds(start: number, end: number): Record<string, WireTensor>;
}

/**
 * What the exported graph of a spec reads and writes (in its layout), and how encoded rows or a request map onto it:
 * the one definition for the in-thread scorer and the inference pool.
 */
export class OnnxIo {
  readonly tasks: number;
  readonly gateSizes: number[];
  /** How a request batch is laid out (requestSides of the spec), whatever the graph's layout. */
  readonly sides: RequestSides;
  /** The graph's own: the request's, or every feature per row. */
  private readonly graphSides: RequestSides;
  /** Columns of the `conditional` output (ESMM tasks); 0 when the graph has none. */
  private readonly conditional: number;
  private readonly inputs: string[];
  private readonly outputs: string[];

  constructor(
    spec: ModelSpec,
    private readonly preprocessing: PreprocessingState,
    readonly layout: GraphLayout = 'rows',
  ) {
    this.tasks = spec.tasks.length;
    this.gateSizes = topologyOf(spec).gates.map((g) => g.experts.length);
    this.sides = requestSides(spec, preprocessing);
    const sides = (this.graphSides = layout === 'request' ? this.sides : rowSides(preprocessing));
    const dim = (shared: number[], i: number) => (shared.includes(i) ? ONNX_SHARED_DIM : ONNX_BATCH_DIM);
    this.conditional = conditionalTasks(spec.tasks).length;
    this.inputs = [
      ...preprocessing.categorical.map((_, i) => `cat_${i}: int32[${dim(sides.categorical.shared, i)}]`),
      ...preprocessing.sequence.map((s, i) => `seq_${i}: int32[${dim(sides.sequence.shared, i)}, ${s.maxLength}]`),
      ...(sides.numeric.item.length > 0 ? [`numeric: float32[${ONNX_BATCH_DIM}, ${sides.numeric.item.length}]`] : []),
      ...(sides.numeric.shared.length > 0
        ? [`shared_numeric: float32[${ONNX_SHARED_DIM}, ${sides.numeric.shared.length}]`]
        : []),
    ];
    this.outputs = [
      `scores: float32[${ONNX_BATCH_DIM}, ${this.tasks}]`,
      ...(this.conditional > 0 ? [`conditional: float32[${ONNX_BATCH_DIM}, ${this.conditional}]`] : []),
      ...this.gateSizes.map((m, i) => `gates_${i}: float32[${ONNX_BATCH_DIM}, ${m}]`),
    ];
  }

  /** Why a session's signature ("name: type[shape]" lists) does not fit the spec, or undefined when it does. */
  mismatch(actualInputs: string[], actualOutputs: string[]): string | undefined {
    if (sameSet(actualInputs, this.inputs) && sameSet(actualOutputs, this.outputs)) return undefined;
    return (
      `the ONNX model does not match the spec: it has inputs {${actualInputs.join('; ')}} and outputs {${actualOutputs.join('; ')}}, ` +
      `the spec needs {${this.inputs.join('; ')}} and {${this.outputs.join('; ')}}`
    );
  }

  fetches(withGates: boolean): string[] {
    return [
      'scores',
      ...(this.conditional > 0 ? ['conditional'] : []),
      ...(withGates ? this.gateSizes.map((_, i) => `gates_${i}`) : []),
    ];
  }

  /** Full rows (every input per row, the shared ones at S = N), over views of the caller's arrays where it can. */
  rows(data: EncodedDataset): Feeder {
    const { numeric } = this.graphSides;
    const width = this.preprocessing.numeric.length;
    // The numerics are one row-major block; only when some are shared do the two sides need their columns copied.
    const columns = (indices: number[], start: number, end: number) => {
      if (indices.length === width) return data.numeric.subarray(start * width, end * width);
      const out = new Float32Array((end - start) * indices.length);
      for (let i = start, o = 0; i < end; i++) for (const j of indices) out[o++] = data.numeric[i * width + j];
      return out;
    };
    return {
      size: data.size,
      feeds: (start, end) => {
        const rows = end - start;
        const feeds: Record<string, WireTensor> = {};
        data.categorical.forEach(
          (c, i) => (feeds[`cat_${i}`] = { type: 'int32', data: c.subarray(start, end), dims: [rows] }),
        );
        this.preprocessing.sequence.forEach(({ maxLength }, i) => {
          const padded = padSequences(data.sequences[i], start, end, maxLength);
          feeds[`seq_${i}`] = { type: 'int32', data: padded, dims: [rows, maxLength] };
        });
        for (const [name, indices] of [
          ['numeric', numeric.item],
          ['shared_numeric', numeric.shared],
        ] as const) {
          if (indices.length > 0)
            feeds[name] = { type: 'float32', data: columns(indices, start, end), dims: [rows, indices.length] };
        }
        return feeds;
      },
    };
  }

  /** One request: its shared inputs once ([1, …], the same for every shard), its item inputs per candidate. */
  request(batch: RequestBatch): Feeder {
    if (this.layout === 'rows') return this.rows(expandRequest(this.sides, batch));
    const { numeric, categorical, sequence } = this.graphSides;
    const { shared } = batch;
    const once: Record<string, WireTensor> = {};
    categorical.shared.forEach(
      (j) => (once[`cat_${j}`] = { type: 'int32', data: Int32Array.of(shared.categorical[j]), dims: [1] }),
    );
    sequence.shared.forEach((j) => {
      const { maxLength } = this.preprocessing.sequence[j];
      const ids = shared.sequences[j];
      const padded = padSequences({ offsets: Int32Array.of(0, ids.length), ids }, 0, 1, maxLength);
      once[`seq_${j}`] = { type: 'int32', data: padded, dims: [1, maxLength] };
    });
    if (numeric.shared.length > 0) {
      const values = Float32Array.from(numeric.shared, (j) => shared.numeric[j]);
      once.shared_numeric = { type: 'float32', data: values, dims: [1, values.length] };
    }
    const width = numeric.item.length;
    return {
      size: batch.size,
      feeds: (start, end) => {
        const rows = end - start;
        const feeds: Record<string, WireTensor> = { ...once };
        categorical.item.forEach(
          (j, k) =>
            (feeds[`cat_${j}`] = { type: 'int32', data: batch.categorical[k].subarray(start, end), dims: [rows] }),
        );
        sequence.item.forEach((j, k) => {
          const { maxLength } = this.preprocessing.sequence[j];
          const padded = padSequences(batch.sequences[k], start, end, maxLength);
          feeds[`seq_${j}`] = { type: 'int32', data: padded, dims: [rows, maxLength] };
        });
        if (width > 0)
          feeds.numeric = {
            type: 'float32',
            data: batch.numeric.subarray(start * width, end * width),
            dims: [rows, width],
          };
        return feeds;
      },
    };
  }

  /** Empty result columns for `size` rows. */
  allocate(size: number, withGates: boolean): ScoreResult {
    return {
      scores: Array.from({ length: this.tasks }, () => new Float32Array(size)),
      gateWeights: withGates ? this.gateSizes.map((m) => new Float32Array(size * m)) : undefined,
      ...(this.conditional > 0
        ? { conditional: Array.from({ length: this.conditional }, () => new Float32Array(size)) }
        : {}),
    };
  }

  /** Copies one run's outputs (rows from `start` on) into the result: scores come row-major, the result is per task. */
  collect(outputs: Readonly<Record<string, Float32Array>>, start: number, rows: number, into: ScoreResult): void {
    transpose(outputs.scores, into.scores, start, rows);
    if (into.conditional) transpose(outputs.conditional, into.conditional, start, rows);
    into.gateWeights?.forEach((w, g) => w.set(outputs[`gates_${g}`], start * this.gateSizes[g]));
  }
}

/** Row-major [rows, columns] values into per-column arrays, from row `start` on. */
function transpose(values: Float32Array, columns: Float32Array[], start: number, rows: number): void {
  const width = columns.length;
  columns.forEach((column, c) => {
    for (let i = 0; i < rows; i++) column[start + i] = values[i * width + c];
  });
}

function sameSet(actual: string[], expected: string[]): boolean {
  return actual.length === expected.length && expected.every((value) => actual.includes(value));
}
