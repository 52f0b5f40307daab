import { expandRequest, type RequestBatch } from '../data/encoded-slice';
import { EncodedDataset } from '../data/preprocessor';
import { MultiTaskModel } from '../mmoe.model';
import { requestSides } from '../model-spec/feature-side';
import { predict } from '../model/predict';
import { checkDeadline, checkEncoded, checkRequest, ScoreOptions, Scorer, ScoreResult } from './scorer';

export interface TfjsScorerOptions {
  /** Rows per forward pass (bounds the memory of a large request). */
  batchSize?: number;
}

/**
 * Scores with the model's own TensorFlow.js network: raw scores, as an engine gives them (withCalibration adds the
 * model's output stage, for every engine alike). The model stays the caller's: dispose() does not free it.
 */
export class TfjsScorer implements Scorer {
  readonly engine = 'tfjs';
  private disposed = false;

  constructor(
    private readonly model: MultiTaskModel,
    private readonly options: TfjsScorerOptions = {},
  ) {}

  async score(data: EncodedDataset, options: ScoreOptions = {}): Promise<ScoreResult> {
    if (this.disposed) throw new Error('the scorer has been disposed');
    checkEncoded(data, this.model.network.preprocessing);
    checkDeadline(options);
    return predict(this.model.network, data, { batchSize: this.options.batchSize, gateWeights: options.gateWeights });
  }

  /** tfjs has no request layout: the request's rows are expanded (the shared columns repeated per candidate). */
  async scoreRequest(batch: RequestBatch, options: ScoreOptions = {}): Promise<ScoreResult> {
    const { spec, preprocessing } = this.model.network;
    const sides = requestSides(spec, preprocessing);
    checkRequest(batch, preprocessing, sides);
    return this.score(expandRequest(sides, batch), options);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}
