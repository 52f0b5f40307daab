import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Counter } from 'prom-client';

import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  checkCalibration,
  checkDeclaredNetwork,
  exportOnnxOffThread,
  FeatureEncoder,
  InferencePool,
  installedNativeBinding,
  loadOnnxRuntime,
  loadTfjsLibrary,
  NATIVE_PACKAGES,
  OnnxScorer,
  parseModelSpec,
  readArtifactHeader,
  requestSides,
  withCalibration,
  type GraphPrecision,
  type InferencePoolStats,
  type ModelSpec,
  type RequestSides,
  type Scorer,
} from '@app/mmoe/serving';

import { MetricsService } from '../platform/metrics.service';

/** What serving a version needs: its spec, the encoder of its fitted preprocessing, its request layout, a scorer. */
export interface LoadedEngine {
  spec: ModelSpec;
  encoder: FeatureEncoder;
  sides: RequestSides;
  scorer: Scorer;
}

/**
 * Turns a version's artifact into a scorer. With onnxruntime-node, the serving graph is built from the artifact
 * (spec, preprocessing, weights) in its request layout — the user's and context's features fed once per request —
 * and runs on the process's inference pool: TensorFlow.js is neither loaded nor initialised. (The version's stored
 * ONNX graph is the row layout, for batch prediction.) tfjs is imported only on a machine without ORT.
 */
@Injectable()
export class ScorerLoader implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ScorerLoader.name);
  private pool?: Promise<InferencePool | undefined>;
  private started?: InferencePool;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    metrics: MetricsService,
  ) {
    const stats = (): InferencePoolStats => this.started?.stats() ?? { runs: 0, rows: 0, expired: 0, backlogMs: 0 };
    const registers = [metrics.registry];
    // Read from the pool at scrape time: it counts on the hot path with plain numbers.
    const counter = (name: string, help: string, read: (s: InferencePoolStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read(stats()));
        },
      });
    counter('inference_runs_total', 'Inference runs started on the inference threads (one per request)', (s) => s.runs);
    counter('inference_rows_total', 'Rows (candidates) the inference threads computed', (s) => s.rows);
    counter(
      'inference_runs_expired_total',
      'Inference runs dropped unstarted: their deadline passed, or would before their pass could end, as they waited',
      (s) => s.expired,
    );
    metrics.scrapedGauge(
      'inference_backlog_ms',
      'Expected ms of the inference queued and running, per thread: what a new request would wait',
      () => stats().backlogMs,
    );
  }

  /**
   * A backend forced by MMOE_BACKEND is loaded only when first needed (an upload's validation, a machine without ORT):
   * the native one is checked now, without loading it, so that its absence fails the start, not the first upload.
   */
  onModuleInit(): void {
    if (this.config.MMOE_BACKEND === 'tensorflow' && !installedNativeBinding())
      throw new Error(`MMOE_BACKEND=tensorflow, but none of ${NATIVE_PACKAGES.join(', ')} is installed`);
  }

  /** `precision` applies to ONNX Runtime's graph; the tfjs fallback always runs in float32. */
  async load(artifact: Uint8Array, precision: GraphPrecision = 'fp32'): Promise<LoadedEngine> {
    if (!(await loadOnnxRuntime())) return this.loadOnTfjs(artifact);
    // The header here, the weights on the export's thread (which decodes and checks them).
    const header = readArtifactHeader(artifact);
    const spec = parseModelSpec(header.spec);
    const preprocessing = checkDeclaredNetwork(spec, header.preprocessing, header.weights);
    const calibration = header.calibration && checkCalibration(header.calibration, spec.tasks);
    const graph = await exportOnnxOffThread(artifact, 'request', precision);
    const pool = await this.inferencePool();
    const engine = pool
      ? await pool.load(graph, spec, preprocessing, 'request')
      : await OnnxScorer.create(graph, spec, preprocessing, { layout: 'request' });
    // The same output stage as createScorer's: the version's calibration over the engine's raw scores.
    return {
      spec,
      encoder: new FeatureEncoder(preprocessing),
      sides: requestSides(spec, preprocessing),
      scorer: withCalibration(engine, calibration, spec.tasks),
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await (await this.pool)?.close();
  }

  /** Started with the first version: a process that never serves a model starts no threads. */
  private inferencePool(): Promise<InferencePool | undefined> {
    const threads = this.config.INFERENCE_THREADS;
    this.pool ??= Promise.resolve(threads > 0 ? (this.started = new InferencePool(threads)) : undefined);
    return this.pool;
  }

  /** No onnxruntime-node on this machine: the tfjs network scores, and lives as long as its scorer. */
  private async loadOnTfjs(artifact: Uint8Array): Promise<LoadedEngine> {
    const { MultiTaskModel, TfjsScorer } = await this.tfjs();
    const model = MultiTaskModel.fromArtifact(artifact);
    const scorer = withCalibration(new TfjsScorer(model), model.calibration, model.spec.tasks);
    return {
      spec: model.spec,
      encoder: model.encoder,
      sides: requestSides(model.spec, model.network.preprocessing),
      scorer: {
        engine: scorer.engine,
        score: (data, options) => scorer.score(data, options),
        scoreRequest: (batch, options) => scorer.scoreRequest(batch, options),
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
