import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';

import { EncodedDataset } from '../data/preprocessor';
import { BatchBuilder, disposeBatch } from '../model/batch';
import { AdamState, MultiTaskNetwork } from '../model/network';
import { Rng } from '../util/random';
import { checkBatchActivations } from './batch-activations.rules';
import { BalanceReport } from './loss-balancing';
import { DataParallelRunner, ParallelTimings } from './parallel/data-parallel.runner';
import { replicaCount } from './parallel/replicas.rules';
import { AdamStart, createTrainingStep, TrainingStep } from './training-step';

/** Runs an epoch's steps, on this thread or on several (the trainer's loop is the same either way). */
export interface StepRunner {
  readonly threads: number;
  readonly timings?: ParallelTimings;
  beginEpoch(order: Uint32Array, steps: number): void;
  /** Trains on batch rows [start, end) of the epoch's order. */
  step(start: number, end: number): Promise<void>;
  /** Sum of batch loss × batch rows over the epoch's steps so far. */
  lossSum(): number;
  /** The task losses' weights now, and what the balancing method measured since the last report. */
  balanceReport(): BalanceReport;
  /** A copy of Adam's state now (every replica's is the same), or undefined for tfjs's own Adam. */
  optimizerState(): AdamState | undefined;
  /** Whether Adam went on from the state given, or started afresh. */
  readonly optimizer: AdamStart;
  dispose(): Promise<void>;
}

/** One replica on this thread; the loss is summed on the backend so that it is read only when reported. */
class LocalRunner implements StepRunner {
  readonly threads = 1;
  private readonly step_: TrainingStep;
  private readonly builder: BatchBuilder;
  private order: Uint32Array = new Uint32Array(0);
  private sum: tf.Scalar = tf.scalar(0);

  constructor(
    private readonly net: MultiTaskNetwork,
    train: EncodedDataset,
    private readonly rng: Rng,
    from: AdamState | undefined,
  ) {
    this.step_ = createTrainingStep(net, from);
    this.builder = new BatchBuilder(net, train, net.spec.training.batchSize);
  }

  beginEpoch(order: Uint32Array): void {
    this.order = order;
    this.sum.dispose();
    this.sum = tf.scalar(0);
  }

  async step(start: number, end: number): Promise<void> {
    const batch = this.builder.training(start, end, this.order);
    const cost = this.step_.run(batch, this.rng);
    disposeBatch(batch);
    const previous = this.sum;
    this.sum = tf.tidy(() => tf.add(previous, tf.mul(cost, end - start)));
    tf.dispose([previous, cost]);
  }

  lossSum(): number {
    return this.sum.dataSync()[0];
  }

  balanceReport(): BalanceReport {
    return this.step_.balanceReport();
  }

  optimizerState(): AdamState | undefined {
    return this.step_.optimizerState();
  }

  get optimizer(): AdamStart {
    return this.step_.optimizer;
  }

  async dispose(): Promise<void> {
    this.sum.dispose();
    this.step_.dispose();
  }
}

class ParallelRunner implements StepRunner {
  constructor(private readonly runner: DataParallelRunner) {}
  get threads() {
    return this.runner.timings.threads;
  }
  get timings() {
    return this.runner.timings;
  }
  beginEpoch(order: Uint32Array, steps: number): void {
    this.runner.beginEpoch(order, steps);
  }
  step(start: number, end: number): Promise<void> {
    return this.runner.step(start, end);
  }
  lossSum(): number {
    return this.runner.lossSum();
  }
  balanceReport(): BalanceReport {
    return this.runner.balanceReport();
  }
  optimizerState(): AdamState | undefined {
    return this.runner.optimizerState();
  }
  get optimizer(): AdamStart {
    return this.runner.optimizer;
  }
  dispose(): Promise<void> {
    return this.runner.dispose();
  }
}

/**
 * `threads`: an explicit count, else training.threads, else every available core (replicaCount decides); `from`:
 * Adam's state to go on from. A batch too large for a replica's memory is refused here, before any step.
 */
export async function createStepRunner(
  net: MultiTaskNetwork,
  train: EncodedDataset,
  rng: Rng,
  threads: number | undefined,
  from?: AdamState,
): Promise<StepRunner> {
  const replicas = replicaCount({
    requested: threads ?? net.spec.training.threads,
    available: availableParallelism(),
    backend: tf.getBackend(),
    trainRows: train.size,
    batchSize: net.spec.training.batchSize,
    parameters: net.parameterCount(),
  });
  const { batchSize } = net.spec.training;
  checkBatchActivations(net.spec, {
    backend: tf.getBackend(),
    rows: Math.ceil(Math.min(batchSize, train.size) / replicas),
    valuesPerRow: new Map(
      net.preprocessing.sequence.map((s, i) => [s.name, train.sequences[i].ids.length / Math.max(train.size, 1)]),
    ),
  });
  if (replicas === 1) return new LocalRunner(net, train, rng, from);
  return new ParallelRunner(await DataParallelRunner.start(net, train, replicas, from));
}
