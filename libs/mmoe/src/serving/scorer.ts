import { EncodedDataset, PreprocessingState } from '../data/preprocessor';

export type ScoringEngine = 'onnxruntime' | 'tfjs';

export interface ScoreResult {
  /** Per task (spec order): a probability for binary tasks, a value in label units for regression ones. */
  scores: Float32Array[];
  /** Per gate of the topology, row-major [rows, experts of that gate]; only when asked for. */
  gateWeights?: Float32Array[];
}

export interface ScoreOptions {
  gateWeights?: boolean;
}

/** Batch scoring of encoded rows, whichever engine runs the network. */
export interface Scorer {
  readonly engine: ScoringEngine;
  score(data: EncodedDataset, options?: ScoreOptions): Promise<ScoreResult>;
  /** Releases what the scorer holds; scoring afterwards is an error. */
  dispose(): Promise<void>;
}

/** Rejects rows encoded for another model before they reach an engine (which would fail obscurely, or not at all). */
export function checkEncoded(data: EncodedDataset, preprocessing: PreprocessingState): void {
  const width = preprocessing.numeric.length;
  if (data.numericWidth !== width || data.numeric.length < data.size * width) {
    throw new Error(
      `expected ${width} numeric features per row, got ${data.numericWidth} (${data.numeric.length} values for ${data.size} rows)`,
    );
  }
  if (
    data.categorical.length !== preprocessing.categorical.length ||
    data.categorical.some((c) => c.length < data.size)
  ) {
    throw new Error(`expected ${preprocessing.categorical.length} categorical columns of ${data.size} rows`);
  }
  if (
    data.sequences.length !== preprocessing.sequence.length ||
    data.sequences.some((s) => s.offsets.length < data.size + 1)
  ) {
    throw new Error(`expected ${preprocessing.sequence.length} sequence columns of ${data.size} rows`);
  }
}

/** The runs a scorer has in flight, so that dispose() can wait for them before it frees what they use. */
export class RunsInFlight {
  private readonly running = new Set<Promise<unknown>>();

  async track<T>(run: Promise<T>): Promise<T> {
    this.running.add(run);
    try {
      return await run;
    } finally {
      this.running.delete(run);
    }
  }

  async settled(): Promise<void> {
    await Promise.allSettled(this.running);
  }
}
