import * as tf from '@tensorflow/tfjs';

import { TrainingBatch } from '../model/batch';
import { createMultiTaskLoss } from '../model/loss';
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
 * On wasm and cpu the update is one fused kernel (FusedAdam); on the native `tensorflow` backend, whose ops are
 * fused natively, tfjs's own Adam.
 */
export function createTrainingStep(net: MultiTaskNetwork): TrainingStep {
  const variables = [...net.params.values()];
  const logVariance = net.params.get('uncertainty/logVariance') as tf.Tensor1D | undefined;
  const objective = createMultiTaskLoss(net.spec);
  const loss = (batch: TrainingBatch, rng: Rng) => (): tf.Scalar => {
    const out = net.forward(batch.inputs, { training: true, rng });
    return tf.add(objective.compute(out.logits, batch.labels, batch.mask, logVariance).total, out.balanceLoss);
  };
  const { learningRate } = net.spec.training;

  if (!FusedAdam.supported()) {
    const optimizer = tf.train.adam(learningRate);
    return {
      run: (batch, rng) => optimizer.minimize(loss(batch, rng), true, variables)!,
      dispose() {
        optimizer.dispose();
        objective.dispose();
      },
    };
  }

  const adam = new FusedAdam(variables, learningRate);
  const gradients = new Float32Array(adam.size);
  return {
    run(batch, rng) {
      const { value, grads } = tf.variableGrads(loss(batch, rng), variables);
      const ordered = variables.map((v) => grads[v.name]);
      adam.gatherGradients(ordered, gradients);
      tf.dispose(ordered);
      adam.apply(gradients);
      return value;
    },
    dispose: () => objective.dispose(),
  };
}
