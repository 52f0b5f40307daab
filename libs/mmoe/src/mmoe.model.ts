import { ArtifactError, ArtifactLimits, decodeArtifact, encodeArtifact } from './artifact/artifact.codec';
import { checkDeclaredNetwork } from './artifact/artifact.rules';
import { checkWasmUsable } from './backend/wasm.guard';
import { outputStage } from './calibration/calibrated.scorer';
import { Calibration, CalibrationFit, checkCalibration, fitCalibration } from './calibration/calibration';
import {
  EncodedDataset,
  FeatureEncoder,
  fitPreprocessingReport,
  type VocabularyGrowth,
  type VocabularyOverflow,
} from './data/preprocessor';
import { RawTable } from './data/raw-table';
import { evaluate, EvaluateOptions, EvaluationReport } from './eval/evaluator';
import { exportOnnx } from './export/onnx.exporter';
import { parseModelSpec } from './model-spec/model-spec';
import { ModelSpec } from './model-spec/model-spec.schema';
import { labelledRows, sampleSpaceTasks } from './model-spec/task-space.rules';
import { AdamState, MultiTaskNetwork } from './model/network';
import { predict, PredictOptions } from './model/predict';
import { warmStartNetwork } from './model/warm-start';
import type { ScoreResult } from './serving/scorer';
import { taskType } from './tasks/task-types';
import { trainNetwork, TrainOptions, TrainSummary } from './train/trainer';
import { Rng } from './util/random';

export interface TrainedModel {
  model: MultiTaskModel;
  /**
   * `valid` is the validation report of the calibrated model (before and after calibration in `valid.calibration`);
   * `warmStart`, after a warm start, what happened to each learnt vocabulary; `vocabularyOverflow`, the learnt
   * vocabularies that reached maxVocab and the ids each left out (after a warm start too); `unlabelledTasks`, the
   * tasks no training row labels, whose towers learnt nothing (their scores are the initial weights'): `cli
   * train` warns of them; a worker refuses such a job before it trains (dataset.rules).
   */
  summary: TrainSummary & {
    calibration: Record<string, CalibrationFit>;
    warmStart?: { vocabularies: VocabularyGrowth[] };
    vocabularyOverflow: VocabularyOverflow[];
    unlabelledTasks: string[];
  };
}

/** TrainOptions but `optimizer`: a state fits the network built here only when it comes from `parent`. */
export interface ModelTrainOptions extends Omit<TrainOptions, 'optimizer'> {
  /**
   * Warm start: every weight starts from this model's, its vocabularies grown by the ids of the training rows, its
   * numeric and label scales kept (see growPreprocessing); calibration is refitted, as after any training. The spec
   * must be compatible with the parent's (IncompatibleParentError otherwise). The parent is only read.
   */
  parent?: MultiTaskModel;
  /**
   * With `parent`: go on with the Adam state its training kept (`keepOptimizer`: moments and step count) instead of
   * a fresh one, as more epochs of the same run would (a parent that kept none: a fresh Adam). A refit does; an
   * incremental job does not (docs/freshness.md has both measured).
   */
  continueOptimizer?: boolean;
  /**
   * Without a validation table: false trains on every row, and validates (early stopping, calibration, the report)
   * on the seeded share it would otherwise hold back, as rows it trained on. For a job whose rows no later training
   * takes up (an incremental one: its child starts where its data ends). Default true.
   */
  holdValidation?: boolean;
}

/**
 * A trained multi-task model: its spec, its fitted preprocessing, its network and the calibration of its binary
 * tasks, saved and loaded as one artifact.
 */
export class MultiTaskModel {
  readonly encoder: FeatureEncoder;

  private constructor(
    readonly network: MultiTaskNetwork,
    /** Per task; all null when uncalibrated. Applied to every score this model or its scorers produce. */
    readonly calibration: Calibration,
  ) {
    this.encoder = new FeatureEncoder(network.preprocessing);
  }

  get spec(): ModelSpec {
    return this.network.spec;
  }

  /**
   * Fits preprocessing on the training rows, then trains. Without a validation table, a seeded share
   * (`training.validationFraction`) of the training rows is held out, and the statistics are learnt from the rest
   * (`holdValidation: false`: validated on, but trained on too).
   */
  static async train(
    spec: ModelSpec,
    data: RawTable,
    valid?: RawTable,
    options: ModelTrainOptions = {},
  ): Promise<TrainedModel> {
    if (data.size === 0) throw new Error('the training data has no rows');
    // Before the network's tensors: on an instance a trap left unusable they would fail at random.
    checkWasmUsable();
    const { parent, continueOptimizer, holdValidation = true, ...trainOptions } = options;
    let trainRows: Uint32Array | undefined;
    let validRows: Uint32Array | undefined;
    if (!valid) {
      if (data.size < 2) throw new Error('need at least 2 rows to hold out a validation split');
      const order = new Rng(spec.training.seed ^ 0x5eed).permutation(data.size);
      const held = Math.min(data.size - 1, Math.max(1, Math.round(data.size * spec.training.validationFraction)));
      validRows = order.subarray(0, held);
      trainRows = holdValidation ? order.subarray(held) : undefined;
    }
    const { network, growth, overflow, optimizer } = parent
      ? withOverflow(warmStartNetwork(parent.network, spec, data, trainRows, { continueOptimizer }))
      : fresh(spec, data, trainRows);
    const encoder = new FeatureEncoder(network.preprocessing);
    try {
      const trainSet = encoder.encodeTable(data, trainRows);
      // A refit validates on the rows it trains on (the same table): encoded once.
      const validation =
        valid === data ? trainSet : valid ? encoder.encodeTable(valid) : encoder.encodeTable(data, validRows);
      const { summary, validPrediction } = await trainNetwork(network, trainSet, validation, {
        ...trainOptions,
        optimizer,
      });
      const fits = fitTaskCalibration(network.spec, validation, validPrediction.scores);
      const calibration = fits.map((f) => f?.calibrator ?? null);
      const model = new MultiTaskModel(network, calibration);
      const groups = valid?.groupIds();
      return {
        model,
        summary: {
          ...summary,
          valid:
            calibration.some((c) => c !== null) || groups
              ? model.evaluate(validation, { groups, prediction: validPrediction })
              : summary.valid,
          calibration: Object.fromEntries(
            spec.tasks.flatMap((task, t) => (fits[t] ? [[task.name, fits[t]!] as const] : [])),
          ),
          ...(growth && { warmStart: { vocabularies: growth } }),
          vocabularyOverflow: overflow,
          unlabelledTasks: spec.tasks.flatMap((task, t) =>
            trainSet.labels[t].some((v) => !Number.isNaN(v)) ? [] : [task.name],
          ),
        },
      };
    } catch (e) {
      network.dispose();
      throw e;
    }
  }

  /**
   * Restores a model saved with toArtifact; any mismatch between spec, preprocessing and weights is an error, found
   * before the network is allocated.
   */
  static fromArtifact(bytes: Uint8Array, limits?: ArtifactLimits): MultiTaskModel {
    const { header, weights } = decodeArtifact(bytes, limits);
    let spec: ModelSpec;
    try {
      spec = parseModelSpec(header.spec);
    } catch (e) {
      throw new ArtifactError(`artifact spec is invalid: ${(e as Error).message}`);
    }
    const network = new MultiTaskNetwork(spec, checkDeclaredNetwork(spec, header.preprocessing, header.weights));
    try {
      const shapes = network.weightShapes();
      for (const [name, shape] of shapes) {
        const entry = header.weights.find((w) => w.name === name);
        if (!entry) throw new ArtifactError(`artifact does not match its spec: weight "${name}" is missing`);
        if (entry.shape.join('x') !== shape.join('x')) {
          throw new ArtifactError(
            `artifact does not match its spec: weight "${name}" has shape [${entry.shape}], the spec needs [${shape}]`,
          );
        }
      }
      const extra = header.weights.find((w) => !shapes.has(w.name));
      if (extra) throw new ArtifactError(`artifact does not match its spec: unexpected weight "${extra.name}"`);
      network.restore(weights);
    } catch (e) {
      network.dispose();
      throw e;
    }
    let calibration: Calibration;
    try {
      calibration = header.calibration ? checkCalibration(header.calibration, spec.tasks) : spec.tasks.map(() => null);
    } catch (e) {
      network.dispose();
      throw new ArtifactError(`artifact calibration is invalid: ${(e as Error).message}`);
    }
    return new MultiTaskModel(network, calibration);
  }

  /**
   * `spec`: the spec to record instead of the model's, which may differ from it in its training section only (no
   * weight depends on it): a training job's overrides are the job's, not the version's.
   */
  toArtifact(metadata: Record<string, unknown> = {}, spec: ModelSpec = this.spec): Buffer {
    if (spec !== this.spec && !sameButTraining(spec, this.spec))
      throw new Error("an artifact's spec may differ from its model's in the training section only");
    const shapes = this.network.weightShapes();
    const weights = new Map(
      [...this.network.snapshot()].map(([name, values]) => [name, { shape: shapes.get(name)!, values }]),
    );
    return encodeArtifact(
      {
        createdAt: new Date().toISOString(),
        spec,
        preprocessing: this.network.preprocessing,
        calibration: this.calibration,
        metadata,
      },
      weights,
    );
  }

  /** The network's inference path as ONNX (see exportOnnx), from the same weights as the artifact. */
  toOnnx(): Uint8Array {
    return exportOnnx({ spec: this.spec, preprocessing: this.network.preprocessing, weights: this.network.snapshot() });
  }

  encode(table: RawTable): EncodedDataset {
    return this.encoder.encodeTable(table);
  }

  /** Calibrated scores (the model's output stage, as every scorer serves them). */
  predict(data: EncodedDataset, options?: PredictOptions): ScoreResult {
    const raw = predict(this.network, data, options);
    return outputStage(this.calibration, this.spec.tasks)?.(raw) ?? raw;
  }

  /** Scores feature records (user and item features merged per candidate). */
  predictRecords(records: Record<string, unknown>[], options?: PredictOptions): ScoreResult {
    return this.predict(this.encoder.encodeRecords(records), options);
  }

  /** Metrics of the calibrated scores, with the calibration before/after; a table made with `groupBy` adds gauc. */
  evaluate(data: RawTable | EncodedDataset, options: EvaluateOptions = {}): EvaluationReport {
    const groups = data instanceof RawTable ? data.groupIds() : undefined;
    const encoded = data instanceof RawTable ? this.encode(data) : data;
    return evaluate(this.network, encoded, { groups, calibration: this.calibration, ...options });
  }

  parameterCount(): number {
    return this.network.parameterCount();
  }

  dispose(): void {
    this.network.dispose();
  }
}

/** Per task, the spec's calibration method fitted on the validation rows of a binary task (undefined otherwise). */
/** `scores`: the network's raw scores on the validation rows. */
function fitTaskCalibration(
  spec: ModelSpec,
  validation: EncodedDataset,
  scores: Float32Array[],
): (CalibrationFit | undefined)[] {
  const method = spec.training.calibration;
  if (method === 'none') return spec.tasks.map(() => undefined);
  const spaces = sampleSpaceTasks(spec.tasks);
  return spec.tasks.map((task, t) => {
    if (!taskType(task).calibrated) return undefined;
    return fitCalibration(method, scores[t], validation.labels[t], labelledRows(validation.labels, t, spaces[t]));
  });
}

/** A network fitted on the rows from scratch, and the vocabularies that overflowed. */
function fresh(spec: ModelSpec, data: RawTable, rows: Uint32Array | undefined) {
  const { state, overflow } = fitPreprocessingReport(spec, data, rows);
  return { network: new MultiTaskNetwork(spec, state), growth: undefined, overflow, optimizer: undefined };
}

/** A warm start, and the grown vocabularies that overflowed. */
function withOverflow(start: { network: MultiTaskNetwork; growth: VocabularyGrowth[]; optimizer?: AdamState }) {
  const overflow = start.growth.flatMap(({ feature, overflow: leftOut }) =>
    leftOut > 0 ? [{ feature, leftOut }] : [],
  );
  return { ...start, overflow };
}

/** Whether two specs mean the same weights: they differ in their training section at most. */
function sameButTraining(a: ModelSpec, b: ModelSpec): boolean {
  return JSON.stringify({ ...a, training: null }) === JSON.stringify({ ...b, training: null });
}
