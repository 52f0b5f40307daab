import { ArtifactError, decodeArtifact, encodeArtifact } from './artifact/artifact.codec';
import { EncodedDataset, FeatureEncoder, fitPreprocessing } from './data/preprocessor';
import { RawTable } from './data/raw-table';
import { evaluate, EvaluationReport } from './eval/evaluator';
import { parseModelSpec } from './model-spec/model-spec';
import { ModelSpec } from './model-spec/model-spec.schema';
import { MultiTaskNetwork } from './model/network';
import { predict, Predictions, PredictOptions } from './model/predict';
import { trainNetwork, TrainOptions, TrainSummary } from './train/trainer';
import { Rng } from './util/random';

export interface TrainedModel {
  model: MultiTaskModel;
  summary: TrainSummary;
}

/** A trained multi-task model: its spec, its fitted preprocessing and its network, saved and loaded as one artifact. */
export class MultiTaskModel {
  readonly encoder: FeatureEncoder;

  private constructor(readonly network: MultiTaskNetwork) {
    this.encoder = new FeatureEncoder(network.preprocessing);
  }

  get spec(): ModelSpec {
    return this.network.spec;
  }

  /**
   * Fits preprocessing on the training rows, then trains. Without a validation table, a seeded share
   * (`training.validationFraction`) of the training rows is held out, and the statistics are learnt from the rest.
   */
  static async train(spec: ModelSpec, data: RawTable, valid?: RawTable, options?: TrainOptions): Promise<TrainedModel> {
    if (data.size === 0) throw new Error('the training data has no rows');
    let trainRows: Uint32Array | undefined;
    let validRows: Uint32Array | undefined;
    if (!valid) {
      if (data.size < 2) throw new Error('need at least 2 rows to hold out a validation split');
      const order = new Rng(spec.training.seed ^ 0x5eed).permutation(data.size);
      const held = Math.min(data.size - 1, Math.max(1, Math.round(data.size * spec.training.validationFraction)));
      validRows = order.subarray(0, held);
      trainRows = order.subarray(held);
    }
    const preprocessing = fitPreprocessing(spec, data, trainRows);
    const encoder = new FeatureEncoder(preprocessing);
    const network = new MultiTaskNetwork(spec, preprocessing);
    try {
      const summary = await trainNetwork(
        network,
        encoder.encodeTable(data, trainRows),
        valid ? encoder.encodeTable(valid) : encoder.encodeTable(data, validRows),
        options,
      );
      return { model: new MultiTaskModel(network), summary };
    } catch (e) {
      network.dispose();
      throw e;
    }
  }

  /** Restores a model saved with toArtifact; any mismatch between spec, preprocessing and weights is an error. */
  static fromArtifact(bytes: Uint8Array): MultiTaskModel {
    const { header, weights } = decodeArtifact(bytes);
    let spec: ModelSpec;
    try {
      spec = parseModelSpec(header.spec);
    } catch (e) {
      throw new ArtifactError(`artifact spec is invalid: ${(e as Error).message}`);
    }
    const network = new MultiTaskNetwork(spec, header.preprocessing);
    try {
      for (const [name, v] of network.params) {
        const entry = header.weights.find((w) => w.name === name);
        if (!entry) throw new ArtifactError(`artifact does not match its spec: weight "${name}" is missing`);
        if (entry.shape.join('x') !== v.shape.join('x')) {
          throw new ArtifactError(
            `artifact does not match its spec: weight "${name}" has shape [${entry.shape}], the spec needs [${v.shape}]`,
          );
        }
      }
      const extra = header.weights.find((w) => !network.params.has(w.name));
      if (extra) throw new ArtifactError(`artifact does not match its spec: unexpected weight "${extra.name}"`);
      network.restore(weights);
    } catch (e) {
      network.dispose();
      throw e;
    }
    return new MultiTaskModel(network);
  }

  toArtifact(metadata: Record<string, unknown> = {}): Buffer {
    const weights = new Map(
      [...this.network.params].map(([name, v]) => [name, { shape: v.shape, values: v.dataSync() as Float32Array }]),
    );
    return encodeArtifact(
      { createdAt: new Date().toISOString(), spec: this.spec, preprocessing: this.network.preprocessing, metadata },
      weights,
    );
  }

  encode(table: RawTable): EncodedDataset {
    return this.encoder.encodeTable(table);
  }

  predict(data: EncodedDataset, options?: PredictOptions): Predictions {
    return predict(this.network, data, options);
  }

  /** Scores feature records (user and item features merged per candidate). */
  predictRecords(records: Record<string, unknown>[], options?: PredictOptions): Predictions {
    return predict(this.network, this.encoder.encodeRecords(records), options);
  }

  evaluate(data: RawTable | EncodedDataset): EvaluationReport {
    return evaluate(this.network, data instanceof RawTable ? this.encode(data) : data);
  }

  parameterCount(): number {
    return this.network.parameterCount();
  }

  dispose(): void {
    this.network.dispose();
  }
}
