import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import { ONNX_BATCH_DIM } from '../export/onnx-graph.builder';
import { padSequences } from '../features/sequence.feature';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { topologyOf } from '../model/topology';
import type { WireTensor } from './inference.protocol';
import { ScoreResult } from './scorer';

/**
 * What the exported graph of a spec reads and writes, and how encoded rows map onto it: the one definition for the
 * in-thread scorer and the inference pool.
 */
export class OnnxIo {
  readonly tasks: number;
  readonly gateSizes: number[];
  private readonly inputs: string[];
  private readonly outputs: string[];

  constructor(
    spec: ModelSpec,
    private readonly preprocessing: PreprocessingState,
  ) {
    this.tasks = spec.tasks.length;
    this.gateSizes = topologyOf(spec).gates.map((g) => g.experts.length);
    const width = preprocessing.numeric.length;
    this.inputs = [
      ...preprocessing.categorical.map((_, i) => `cat_${i}: int32[${ONNX_BATCH_DIM}]`),
      ...preprocessing.sequence.map((s, i) => `seq_${i}: int32[${ONNX_BATCH_DIM}, ${s.maxLength}]`),
      ...(width > 0 ? [`numeric: float32[${ONNX_BATCH_DIM}, ${width}]`] : []),
    ];
    this.outputs = [
      `scores: float32[${ONNX_BATCH_DIM}, ${this.tasks}]`,
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
    return ['scores', ...(withGates ? this.gateSizes.map((_, i) => `gates_${i}`) : [])];
  }

  /** Rows [start, end) as graph inputs, over views of the caller's arrays (sequences are padded, the rest not copied). */
  feeds(data: EncodedDataset, start: number, end: number): Record<string, WireTensor> {
    const rows = end - start;
    const feeds: Record<string, WireTensor> = {};
    data.categorical.forEach(
      (c, i) => (feeds[`cat_${i}`] = { type: 'int32', data: c.subarray(start, end), dims: [rows] }),
    );
    this.preprocessing.sequence.forEach(({ maxLength }, i) => {
      const padded = padSequences(data.sequences[i], start, end, maxLength);
      feeds[`seq_${i}`] = { type: 'int32', data: padded, dims: [rows, maxLength] };
    });
    const width = this.preprocessing.numeric.length;
    if (width > 0)
      feeds.numeric = { type: 'float32', data: data.numeric.subarray(start * width, end * width), dims: [rows, width] };
    return feeds;
  }

  /** Empty result columns for `size` rows. */
  allocate(size: number, withGates: boolean): ScoreResult {
    return {
      scores: Array.from({ length: this.tasks }, () => new Float32Array(size)),
      gateWeights: withGates ? this.gateSizes.map((m) => new Float32Array(size * m)) : undefined,
    };
  }

  /** Copies one run's outputs (rows from `start` on) into the result: scores come row-major, the result is per task. */
  collect(outputs: Record<string, { data: unknown }>, start: number, rows: number, into: ScoreResult): void {
    const tasks = this.tasks;
    const s = outputs.scores.data as Float32Array;
    for (let t = 0; t < tasks; t++) {
      const column = into.scores[t];
      for (let i = 0; i < rows; i++) column[start + i] = s[i * tasks + t];
    }
    into.gateWeights?.forEach((w, g) => w.set(outputs[`gates_${g}`].data as Float32Array, start * this.gateSizes[g]));
  }
}

function sameSet(actual: string[], expected: string[]): boolean {
  return actual.length === expected.length && expected.every((value) => actual.includes(value));
}
