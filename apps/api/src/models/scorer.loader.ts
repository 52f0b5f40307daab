import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  checkCalibration,
  checkDeclaredNetwork,
  decodeArtifact,
  exportOnnx,
  FeatureEncoder,
  InferencePool,
  loadOnnxRuntime,
  loadTfjsLibrary,
  OnnxScorer,
  parseModelSpec,
  readArtifactHeader,
  withCalibration,
  type ModelSpec,
  type Scorer,
} from '@app/mmoe/serving';

/** What serving a version needs: its spec, the encoder of its fitted preprocessing, and a scorer. */
export interface LoadedEngine {
  spec: ModelSpec;
  encoder: FeatureEncoder;
  scorer: Scorer;
}

/**
 * Turns a version's stored bytes into a scorer. With an ONNX graph and onnxruntime-node, only the artifact's header
 * is read (spec and preprocessing) and the graph runs on the process's inference pool: TensorFlow.js is neither
 * loaded nor initialised. tfjs is imported only for a version without a graph or a machine without ORT.
 */
@Injectable()
export class ScorerLoader implements OnApplicationShutdown {
  private readonly logger = new Logger(ScorerLoader.name);
  private pool?: Promise<InferencePool | undefined>;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async load(artifact: Uint8Array, onnx: Uint8Array | null): Promise<LoadedEngine> {
    const header = readArtifactHeader(artifact);
    if (!(await loadOnnxRuntime())) return this.loadOnTfjs(artifact);
    const spec = parseModelSpec(header.spec);
    const calibration = header.calibration && checkCalibration(header.calibration, spec.tasks);
    const graph = onnx ?? this.exportGraph(artifact, spec);
    const pool = await this.inferencePool();
    const engine = pool
      ? await pool.load(graph, spec, header.preprocessing)
      : await OnnxScorer.create(graph, spec, header.preprocessing);
    // The same output stage as createScorer's: the version's calibration over the engine's raw scores.
    return { spec, encoder: new FeatureEncoder(header.preprocessing), scorer: withCalibration(engine, calibration) };
  }

  async onApplicationShutdown(): Promise<void> {
    await (await this.pool)?.close();
  }

  /** Started with the first version: a process that never serves a model starts no threads. */
  private inferencePool(): Promise<InferencePool | undefined> {
    const threads = this.config.INFERENCE_THREADS;
    this.pool ??= Promise.resolve(threads > 0 ? new InferencePool(threads) : undefined);
    return this.pool;
  }

  /** A version registered without its graph (older artifacts): built from the artifact's weights, without tfjs. */
  private exportGraph(artifact: Uint8Array, spec: ModelSpec): Uint8Array {
    const { header, weights } = decodeArtifact(artifact);
    return exportOnnx({
      spec,
      preprocessing: checkDeclaredNetwork(spec, header.preprocessing, header.weights),
      weights,
    });
  }

  /** No onnxruntime-node on this machine: the tfjs network scores, and lives as long as its scorer. */
  private async loadOnTfjs(artifact: Uint8Array): Promise<LoadedEngine> {
    const { MultiTaskModel, TfjsScorer } = await this.tfjs();
    const model = MultiTaskModel.fromArtifact(artifact);
    const scorer = withCalibration(new TfjsScorer(model), model.calibration);
    return {
      spec: model.spec,
      encoder: model.encoder,
      scorer: {
        engine: scorer.engine,
        score: (data, options) => scorer.score(data, options),
        dispose: async () => {
          await scorer.dispose();
          model.dispose();
        },
      },
    };
  }

  private async tfjs(): Promise<Awaited<ReturnType<typeof loadTfjsLibrary>>> {
    const mmoe = await loadTfjsLibrary();
    const backend = await mmoe.initBackend(this.config.MMOE_BACKEND);
    this.logger.log(`TensorFlow.js loaded for a version without an ONNX Runtime path (${backend.detail})`);
    return mmoe;
  }
}
