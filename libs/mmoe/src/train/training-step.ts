import * as tf from '@tensorflow/tfjs';

import { TrainingBatch } from '../model/batch';
import { createMultiTaskLoss, ShardOfBatch } from '../model/loss';
import { MultiTaskNetwork } from '../model/network';
import { Rng } from '../util/random';
import { FusedAdam } from './fused-adam.optimizer';

/** One optimisation step on a batch: forward, loss, gradients and the parameter update. */
export interface TrainingStep {
  /** Returns the batch's loss (owned by the caller). */
  run(batch: TrainingBatch, rng: Rng): tf.Scalar;
  dispose(): void;
}

/**
 * The two halves of a fused step, for data-parallel replicas that exchange gradients between them: every replica
 * writes its shard's gradient, the sum of all shards is applied by each.
 */
export interface SplitTrainingStep extends TrainingStep {
  /** Length of the flat gradient. */
  readonly size: number;
  /** Writes the gradient of the batch's (or shard's) loss into `into`; returns the loss. */
  gradients(batch: TrainingBatch, rng: Rng, into: Float32Array, shard?: ShardOfBatch): number;
  apply(gradients: Float32Array): void;
}

/**
 * On wasm and cpu the update is one fused kernel (FusedAdam); on the native `tensorflow` backend, whose ops are
 * fused natively, tfjs's own Adam.
 */
export function createTrainingStep(net: MultiTaskNetwork): TrainingStep {
  return FusedAdam.supported() ? createSplitTrainingStep(net) : createStockTrainingStep(net);
}

function lossOf(net: MultiTaskNetwork) {
  const logVariance = net.params.get('uncertainty/logVariance') as tf.Tensor1D | undefined;
  const objective = createMultiTaskLoss(net.spec);
  return {
    loss: (batch: TrainingBatch, rng: Rng, shard?: ShardOfBatch) => (): tf.Scalar => {
      const out = net.forward(batch.inputs, { training: true, rng });
      const total = objective.compute(out.logits, batch.labels, batch.mask, logVariance, shard).total;
      return tf.add(total, shard ? tf.mul(out.balanceLoss, shard.share) : out.balanceLoss);
    },
    dispose: () => objective.dispose(),
  };
}

function createStockTrainingStep(net: MultiTaskNetwork): TrainingStep {
  const variables = [...net.params.values()];
  const objective = lossOf(net);
  const optimizer = tf.train.adam(net.spec.training.learningRate);
  return {
    run: (batch, rng) => optimizer.minimize(objective.loss(batch, rng), true, variables)!,
    dispose() {
      optimizer.dispose();
      objective.dispose();
    },
  };
}

export function createSplitTrainingStep(net: MultiTaskNetwork): SplitTrainingStep {
  if (!FusedAdam.supported()) throw new Error(`the fused training step needs the wasm or cpu backend`);
  const variables = [...net.params.values()];
  const objective = lossOf(net);
  const adam = new FusedAdam(variables, net.spec.training.learningRate);
  const local = new Float32Array(adam.size);
  const gradients = (batch: TrainingBatch, rng: Rng, into: Float32Array, shard?: ShardOfBatch) => {
    const { value, grads } = tf.variableGrads(objective.loss(batch, rng, shard), variables);
    const ordered = variables.map((v) => grads[v.name]);
    adam.gatherGradients(ordered, into);
    tf.dispose(ordered);
    return value;
  };
  return {
    size: adam.size,
    run(batch, rng) {
      const value = gradients(batch, rng, local);
      adam.apply(local);
      return value;
    },
    gradients(batch, rng, into, shard) {
      const value = gradients(batch, rng, into, shard);
      const loss = value.dataSync()[0];
      value.dispose();
      return loss;
    },
    apply: (g) => adam.apply(g),
    dispose: () => objective.dispose(),
  };
}
