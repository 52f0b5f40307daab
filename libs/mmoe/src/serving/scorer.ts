import type { RequestBatch } from '../data/encoded-slice';
import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import type { RequestSides } from '../model-spec/feature-side';

export type ScoringEngine = 'onnxruntime' | 'tfjs';

export interface ScoreResult {
  /** Per task (spec order): a probability for binary tasks, a value in label units for regression ones. */
  scores: Float32Array[];
  /**
   * Per conditional task (ESMM, spec order: conditionalTasks()), P(task | parent), uncalibrated; present when the spec
   * has conditional tasks. Their `scores` are the joint P(parent ∧ task).
   */
  conditional?: Float32Array[];
  /** Per gate of the topology, row-major [rows, experts of that gate]; only when asked for. */
  gateWeights?: Float32Array[];
}

export interface ScoreOptions {
  gateWeights?: boolean;
  /**
   * performance.now() by which the run must be done: an engine drops it if it has not started by then (the inference
   * pool, as soon as its measured pass would end after it); it rejects with DeadlineExpiredError and nothing is
   * computed. None by default.
   */
  deadline?: number;
  /**
   * Work no caller waits for (the shadow's): an engine with a queue starts it only when no other run waits, leaves it
   * out of the wait it estimates for others, and never splits it across threads; under load it waits until its
   * deadline drops it.
   */
  background?: boolean;
}

/** A run that an engine could not start in time to be done by its deadline: it was dropped, not computed. */
export class DeadlineExpiredError extends Error {
  override readonly name = 'DeadlineExpiredError';

  constructor() {
    super('the run was dropped: its deadline would pass before its inference could be done');
  }
}

/** For engines that start a run as soon as it is asked for: only a deadline already past drops it. */
export function checkDeadline({ deadline }: ScoreOptions): void {
  if (deadline !== undefined && performance.now() >= deadline) throw new DeadlineExpiredError();
}

export interface InferenceEstimate {
  /** Ms of work queued and running ahead of it, per engine thread: 0 when a thread would start it at once. */
  waitMs: number;
  /** Ms of its own pass. */
  passMs: number;
}

/** Batch scoring of encoded rows, whichever engine runs the network. */
export interface Scorer {
  readonly engine: ScoringEngine;
  score(data: EncodedDataset, options?: ScoreOptions): Promise<ScoreResult>;
  /** One request's candidates: the shared (user and context) features once, the item side per candidate. */
  scoreRequest(batch: RequestBatch, options?: ScoreOptions): Promise<ScoreResult>;
  /**
   * What a run of `rows` rows asked for now would take, behind `aheadRows` more that the caller is about to ask for,
   * from the passes the engine measured; undefined when it has no estimate (nothing measured yet, or an engine
   * without a queue).
   */
  estimate?(rows: number, aheadRows?: number): InferenceEstimate | undefined;
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

/** Rejects a request assembled for another model's sides. */
export function checkRequest(batch: RequestBatch, preprocessing: PreprocessingState, sides: RequestSides): void {
  const { shared } = batch;
  if (
    shared.numeric.length !== preprocessing.numeric.length ||
    shared.categorical.length !== preprocessing.categorical.length ||
    shared.sequences.length !== preprocessing.sequence.length ||
    batch.numeric.length !== batch.size * sides.numeric.item.length ||
    batch.categorical.length !== sides.categorical.item.length ||
    batch.categorical.some((c) => c.length !== batch.size) ||
    batch.sequences.length !== sides.sequence.item.length ||
    batch.sequences.some((s) => s.offsets.length !== batch.size + 1)
  ) {
    throw new Error(
      `the request does not fit the model: it needs ${sides.numeric.item.length} numeric, ${sides.categorical.item.length} categorical and ` +
        `${sides.sequence.item.length} sequence item columns over a shared slice of ${preprocessing.numeric.length} / ` +
        `${preprocessing.categorical.length} / ${preprocessing.sequence.length}`,
    );
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
