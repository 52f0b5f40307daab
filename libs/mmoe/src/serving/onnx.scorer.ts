import type { InferenceSession, Tensor } from 'onnxruntime-node';

import type { RequestBatch } from '../data/encoded-slice';
import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import type { GraphLayout } from '../export/onnx.exporter';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { signatureOf } from './inference.protocol';
import { Feeder, OnnxIo } from './onnx-io';
import { checkDeadline, checkEncoded, checkRequest, RunsInFlight, ScoreOptions, Scorer, ScoreResult } from './scorer';

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
  /** The graph's layout (exportOnnx's): `rows` by default. */
  layout?: GraphLayout;
}

/** Scores with onnxruntime on a model exported by exportOnnx, on the calling thread. */
export class OnnxScorer implements Scorer {
  readonly engine = 'onnxruntime';
  private session: InferenceSession | undefined;
  private readonly running = new RunsInFlight();

  private constructor(
    private readonly ort: OnnxRuntime,
    session: InferenceSession,
    private readonly io: OnnxIo,
    private readonly preprocessing: PreprocessingState,
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
    const io = new OnnxIo(spec, preprocessing, options.layout);
    const mismatch = io.mismatch(signatureOf(session.inputMetadata), signatureOf(session.outputMetadata));
    if (mismatch) {
      await session.release();
      throw new Error(mismatch);
    }
    return new OnnxScorer(ort, session, io, preprocessing, batchSize);
  }

  async score(data: EncodedDataset, options: ScoreOptions = {}): Promise<ScoreResult> {
    const session = this.live();
    checkEncoded(data, this.preprocessing);
    checkDeadline(options);
    return this.running.track(this.run(session, this.io.rows(data), options.gateWeights ?? false));
  }

  async scoreRequest(batch: RequestBatch, options: ScoreOptions = {}): Promise<ScoreResult> {
    const session = this.live();
    checkRequest(batch, this.preprocessing, this.io.sides);
    checkDeadline(options);
    return this.running.track(this.run(session, this.io.request(batch), options.gateWeights ?? false));
  }

  /** Waits for the runs in flight (releasing the session under them would crash the process), then releases it. */
  async dispose(): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    await this.running.settled();
    await session.release();
  }

  private live(): InferenceSession {
    if (!this.session) throw new Error('the scorer has been disposed');
    return this.session;
  }

  private async run(session: InferenceSession, input: Feeder, withGates: boolean): Promise<ScoreResult> {
    const result = this.io.allocate(input.size, withGates);
    const fetches = this.io.fetches(withGates);
    for (let start = 0; start < input.size; start += this.batchSize) {
      const end = Math.min(start + this.batchSize, input.size);
      const feeds: Record<string, Tensor> = {};
      for (const [name, { type, data: values, dims }] of Object.entries(input.feeds(start, end)))
        feeds[name] = new this.ort.Tensor(type, values, dims);
      const outputs = await session.run(feeds, fetches);
      const columns: Record<string, Float32Array> = {};
      for (const name of fetches) columns[name] = outputs[name].data as Float32Array;
      this.io.collect(columns, start, end - start, result);
    }
    return result;
  }
}
