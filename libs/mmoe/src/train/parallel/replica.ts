import * as tf from '@tensorflow/tfjs';

import { EncodedDataset } from '../../data/preprocessor';
import { BatchBuilder, disposeBatch } from '../../model/batch';
import { AdamState, MultiTaskNetwork } from '../../model/network';
import { Rng } from '../../util/random';
import { BalanceReport } from '../loss-balancing';
import { AdamStart, createSplitTrainingStep, SplitTrainingStep } from '../training-step';
import { GradientExchange } from './gradient-exchange';
import { shardOf } from './replicas.rules';

/** One data-parallel replica: its copy of the network, its shard of every batch, its side of the exchange. */
export class Replica {
  private readonly step: SplitTrainingStep;
  private readonly builder: BatchBuilder;
  private readonly summed: Float32Array;
  private readonly rng: Rng;

  constructor(
    private readonly net: MultiTaskNetwork,
    private readonly data: EncodedDataset,
    readonly exchange: GradientExchange,
    from?: AdamState,
  ) {
    this.step = createSplitTrainingStep(net, from);
    if (this.step.size !== exchange.size)
      throw new Error(`replica gradient has ${this.step.size} values, the exchange ${exchange.size}`);
    const { batchSize, seed } = net.spec.training;
    this.builder = new BatchBuilder(net, data, Math.ceil(batchSize / exchange.replicas));
    this.summed = new Float32Array(exchange.size);
    // Gate noise differs per replica, as it differs per example.
    this.rng = new Rng(seed + 7919 * (exchange.replica + 1));
  }

  /** Up to the barrier: this replica's shard of batch rows [start, end) of `order`, its gradient into its slot. */
  computeShard(start: number, end: number, order: Uint32Array): void {
    const slot = this.exchange.slot();
    const [from, to] = shardOf(start, end, this.exchange.replicas, this.exchange.replica);
    if (from === to) {
      slot.fill(0); // a last batch smaller than the replica count leaves some shards empty
      return;
    }
    const labelled = tf.tensor1d(this.builder.labelledCounts(start, end, order));
    const batch = this.builder.training(from, to, order);
    try {
      slot[this.exchange.size] = this.step.gradients(batch, this.rng, slot, {
        labelled,
        share: (to - from) / (end - start),
      });
    } finally {
      disposeBatch(batch);
      labelled.dispose();
    }
  }

  /** After the barrier: applies the summed gradient; returns the batch's loss. */
  finishStep(): number {
    const loss = this.exchange.sum(this.summed);
    this.step.apply(this.summed);
    return loss;
  }

  balanceReport(): BalanceReport {
    return this.step.balanceReport();
  }

  optimizerState(): AdamState {
    return this.step.optimizerState()!;
  }

  get optimizer(): AdamStart {
    return this.step.optimizer;
  }

  dispose(): void {
    this.step.dispose();
  }

  get network(): MultiTaskNetwork {
    return this.net;
  }

  get dataset(): EncodedDataset {
    return this.data;
  }
}
