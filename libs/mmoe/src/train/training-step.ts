import * as tf from '@tensorflow/tfjs';

import { TrainingBatch } from '../model/batch';
import { createMultiTaskLoss } from '../model/loss';
import { MultiTaskNetwork } from '../model/network';
import { Rng } from '../util/random';

/** One optimisation step on a batch: forward, loss, gradients and the parameter update. */
export interface TrainingStep {
  /** Returns the batch's loss (owned by the caller). */
  run(batch: TrainingBatch, rng: Rng): tf.Scalar;
  dispose(): void;
}

export function createTrainingStep(net: MultiTaskNetwork): TrainingStep {
  const variables = [...net.params.values()];
  const logVariance = net.params.get('uncertainty/logVariance') as tf.Tensor1D | undefined;
  const objective = createMultiTaskLoss(net.spec);
  const loss = (batch: TrainingBatch, rng: Rng) => (): tf.Scalar => {
    const out = net.forward(batch.inputs, { training: true, rng });
    return tf.add(objective.compute(out.logits, batch.labels, batch.mask, logVariance).total, out.balanceLoss);
  };
  const optimizer = tf.train.adam(net.spec.training.learningRate);
  return {
    run: (batch, rng) => optimizer.minimize(loss(batch, rng), true, variables)!,
    dispose() {
      optimizer.dispose();
      objective.dispose();
    },
  };
}
