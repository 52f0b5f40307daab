import * as tf from '@tensorflow/tfjs';

import { ModelSpec } from '../model-spec/model-spec.schema';
import { TASK_TYPES, taskType } from '../tasks/task-types';

export interface LossTerms {
  total: tf.Scalar;
  /** [tasks] mean loss of each task over its labelled examples, weighted by their sample weights. */
  perTask: tf.Tensor1D;
}

/**
 * Weighted sum of the task losses (each task type's, see TASK_TYPES: sigmoid cross-entropy from logits for binary
 * tasks, squared error on standardised targets for regression), each task's the weighted mean over its labelled
 * examples: the mask holds each example's sample weight where it has the task's label (1 unweighted) and 0 where not,
 * so an example without a label does not count for the task, and the weights sum to the denominator. With uncertainty
 * weighting (Kendall et al. 2018) task t contributes exp(-s_t)·c_t·L_t + s_t/2, where s_t is a learnt log-variance
 * and c_t is its type's uncertaintyScale (1 for classification, 1/2 for regression).
 */
export interface MultiTaskLoss {
  compute(
    logits: tf.Tensor2D,
    labels: tf.Tensor2D,
    mask: tf.Tensor2D,
    logVariance?: tf.Tensor1D,
    shard?: ShardOfBatch,
  ): LossTerms;
  dispose(): void;
}

/**
 * A shard of a batch split over data-parallel replicas: its loss is its part of the whole batch's loss (per-task means
 * over the batch's labelled examples, per-batch terms times its share of the rows), so that the replicas' gradients
 * sum to the batch's gradient.
 */
export interface ShardOfBatch {
  /** [tasks] weight (count unweighted) of each task's labelled examples in the whole batch. */
  labelled: tf.Tensor1D;
  /** Rows of the shard / rows of the batch. */
  share: number;
}

/** The loss of a spec; its per-task constants are made once, not on every training step. */
export function createMultiTaskLoss(spec: ModelSpec): MultiTaskLoss {
  // Each task type present computes its loss over the whole [batch, tasks] matrix (a few kernels, whatever the number
  // of tasks), kept on its own columns; with one type there is nothing to mask.
  const types = [...new Set(spec.tasks.map((t) => t.type))].map((name) => ({
    type: TASK_TYPES[name],
    columns: tf.tensor1d(spec.tasks.map((t) => (t.type === name ? 1 : 0))),
  }));
  const weights = tf.tensor1d(spec.tasks.map((t) => t.weight));
  const scale = tf.tensor1d(spec.tasks.map((t) => taskType(t).uncertaintyScale));
  return {
    compute(logits, labels, mask, logVariance, shard) {
      const perExample =
        types.length === 1
          ? types[0].type.loss(tf, logits, labels)
          : tf.addN(types.map(({ type, columns }) => tf.mul(type.loss(tf, logits, labels), columns)));
      const labelled = shard?.labelled ?? tf.sum(mask, 0);
      // A task without weight in the batch has a numerator of 0 too: any positive floor gives 0, and none below 1 may
      // clip a real total (weights can sum to less than 1).
      const perTask = tf.div(tf.sum(tf.mul(perExample, mask), 0), tf.maximum(labelled, 1e-30)) as tf.Tensor1D;
      if (!logVariance) return { total: tf.sum(tf.mul(perTask, weights)) as tf.Scalar, perTask };
      const regulariser = tf.mul(0.5 * (shard?.share ?? 1), logVariance);
      const weighted = tf.add(tf.mul(tf.mul(tf.exp(tf.neg(logVariance)), scale), perTask), regulariser);
      return { total: tf.sum(tf.mul(weighted, weights)) as tf.Scalar, perTask };
    },
    dispose: () => tf.dispose([...types.map((t) => t.columns), weights, scale]),
  };
}
