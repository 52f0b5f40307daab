import type { InferenceSession, Tensor } from 'onnxruntime-node';

import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import { ONNX_BATCH_DIM } from '../export/onnx.exporter';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { topologyOf } from '../model/topology';
import { checkEncoded, ScoreOptions, Scorer, ScoreResult } from './scorer';

type OnnxRuntime = typeof import('onnxruntime-node');

let runtime: Promise<OnnxRuntime | undefined> | undefined;

/**
 * onnxruntime-node, or undefined when it cannot be loaded here (its native binding is built for a few platforms
 * only). Loaded on first use, so that importing this library never requires it.
 */
export function loadOnnxRuntime(): Promise<OnnxRuntime | undefined> {
  runtime ??= import('onnxruntime-node').then(
    (ort) => ort,
    () => undefined,
  );
  return runtime;
}

export interface OnnxScorerOptions {
  /**
   * Threads one inference may use. 1 by default: the API process serves many requests side by side, and
   * onnxruntime's own thread pool would compete with them for the cores.
   */
  intraOpThreads?: number;
  /** Rows per session run (bounds the intermediate activations of a large request). */
  batchSize?: number;
}

/** Scores with onnxruntime on a model exported by exportOnnx. */
export class OnnxScorer implements Scorer {
  readonly engine = 'onnxruntime';
  private session: InferenceSession | undefined;
  private readonly running = new Set<Promise<unknown>>();

  private constructor(
    private readonly ort: OnnxRuntime,
    session: InferenceSession,
    private readonly tasks: number,
    private readonly preprocessing: PreprocessingState,
    private readonly gateSizes: number[],
    private readonly batchSize: number,
  ) {
    this.session = session;
  }

  /** Fails when onnxruntime-node cannot be loaded, the bytes are no valid model, or the model does not match the spec. */
  static async create(
    onnx: Uint8Array,
    spec: ModelSpec,
    preprocessing: PreprocessingState,
    options: OnnxScorerOptions = {},
  ): Promise<OnnxScorer> {
    const ort = await loadOnnxRuntime();
    if (!ort) throw new Error('onnxruntime-node cannot be loaded on this machine');
    const threads = options.intraOpThreads ?? 1;
    const batchSize = options.batchSize ?? 4096;
    for (const [option, value] of [
      ['intraOpThreads', threads],
      ['batchSize', batchSize],
    ] as const) {
      if (!(Number.isInteger(value) && value >= 1)) throw new Error(`${option} must be an integer >= 1 (got ${value})`);
    }
    const session = await ort.InferenceSession.create(onnx, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const gateSizes = topologyOf(spec).gates.map((g) => g.experts.length);
    const width = preprocessing.numeric.length;
    const inputs = [
      ...preprocessing.categorical.map((_, i) => `cat_${i}: int32[${ONNX_BATCH_DIM}]`),
      ...(width > 0 ? [`numeric: float32[${ONNX_BATCH_DIM}, ${width}]`] : []),
    ];
    const outputs = [
      `scores: float32[${ONNX_BATCH_DIM}, ${spec.tasks.length}]`,
      ...gateSizes.map((m, i) => `gates_${i}: float32[${ONNX_BATCH_DIM}, ${m}]`),
    ];
    const actualInputs = signature(session.inputMetadata);
    const actualOutputs = signature(session.outputMetadata);
    if (!sameSet(actualInputs, inputs) || !sameSet(actualOutputs, outputs)) {
      await session.release();
      throw new Error(
        `the ONNX model does not match the spec: it has inputs {${actualInputs.join('; ')}} and outputs {${actualOutputs.join('; ')}}, ` +
          `the spec needs {${inputs.join('; ')}} and {${outputs.join('; ')}}`,
      );
    }
    return new OnnxScorer(ort, session, spec.tasks.length, preprocessing, gateSizes, batchSize);
  }

  async score(data: EncodedDataset, options: ScoreOptions = {}): Promise<ScoreResult> {
    const session = this.session;
    if (!session) throw new Error('the scorer has been disposed');
    checkEncoded(data, this.preprocessing);
    const run = this.run(session, data, options.gateWeights ?? false);
    this.running.add(run);
    try {
      return await run;
    } finally {
      this.running.delete(run);
    }
  }

  /** Waits for the runs in flight (releasing the session under them would crash the process), then releases it. */
  async dispose(): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    await Promise.allSettled(this.running);
    await session.release();
  }

  private async run(session: InferenceSession, data: EncodedDataset, withGates: boolean): Promise<ScoreResult> {
    const tasks = this.tasks;
    const scores = Array.from({ length: tasks }, () => new Float32Array(data.size));
    const gateWeights = withGates ? this.gateSizes.map((m) => new Float32Array(data.size * m)) : undefined;
    const fetches = ['scores', ...(withGates ? this.gateSizes.map((_, i) => `gates_${i}`) : [])];
    const width = data.numericWidth;
    for (let start = 0; start < data.size; start += this.batchSize) {
      const end = Math.min(start + this.batchSize, data.size);
      const rows = end - start;
      // Tensors over views of the caller's arrays: the inputs are not copied.
      const feeds: Record<string, Tensor> = {};
      data.categorical.forEach(
        (c, i) => (feeds[`cat_${i}`] = new this.ort.Tensor('int32', c.subarray(start, end), [rows])),
      );
      if (width > 0)
        feeds.numeric = new this.ort.Tensor('float32', data.numeric.subarray(start * width, end * width), [
          rows,
          width,
        ]);
      const out = await session.run(feeds, fetches);
      const s = out.scores.data as Float32Array;
      for (let t = 0; t < tasks; t++) {
        const column = scores[t];
        for (let i = 0; i < rows; i++) column[start + i] = s[i * tasks + t];
      }
      gateWeights?.forEach((w, g) => w.set(out[`gates_${g}`].data as Float32Array, start * this.gateSizes[g]));
    }
    return { scores, gateWeights };
  }
}

/** Each value as "name: type[shape]". */
function signature(values: readonly InferenceSession.ValueMetadata[]): string[] {
  return values.map((v) => (v.isTensor ? `${v.name}: ${v.type}[${v.shape.join(', ')}]` : `${v.name}: not a tensor`));
}

function sameSet(actual: string[], expected: string[]): boolean {
  return actual.length === expected.length && expected.every((value) => actual.includes(value));
}
