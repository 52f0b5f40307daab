import * as tf from '@tensorflow/tfjs';

import { lossBalancingOf } from '../model-spec/model-spec.schema';
import { TrainingBatch } from '../model/batch';
import { createMultiTaskLoss, ShardOfBatch } from '../model/loss';
import { AdamState, MultiTaskNetwork } from '../model/network';
import { Rng } from '../util/random';
import { FlatAdamState, FusedAdam } from './fused-adam.optimizer';
import { BalanceReport, createBalancer, fixedWeights, ForwardPasses, PassLosses, totalLoss } from './loss-balancing';

/** One optimisation step on a batch: forward, loss, gradients and the parameter update. */
export interface TrainingStep {
  /** Returns the batch's loss (owned by the caller). */
  run(batch: TrainingBatch, rng: Rng): tf.Scalar;
  /** Each task loss's weight now, and what the balancing method measured since the last report. */
  balanceReport(): BalanceReport;
  /** A copy of Adam's state now, in the public weights' layout (undefined for tfjs's own Adam: it is not read). */
  optimizerState(): AdamState | undefined;
  /** Whether Adam went on from a given state, or started afresh (tfjs's own Adam always does). */
  readonly optimizer: AdamStart;
  dispose(): void;
}

export type AdamStart = 'continued' | 'fresh';

/**
 * The two halves of a fused step, for data-parallel replicas that exchange gradients between them: every replica
 * writes its shard's gradient, the sum of all shards is applied by each.
 */
export interface SplitTrainingStep extends TrainingStep {
  /** Length of what a shard contributes (the flat gradient, and for gradnorm and pcgrad the per-task parts). */
  readonly size: number;
  /** Writes the gradient of the batch's (or shard's) loss into `into`; returns the loss. */
  gradients(batch: TrainingBatch, rng: Rng, into: Float32Array, shard?: ShardOfBatch): number;
  apply(gradients: Float32Array): void;
}

/**
 * On wasm and cpu the update is one fused kernel (FusedAdam); on the native `tensorflow` backend, whose ops are
 * fused natively, tfjs's own Adam — without the gradient-level balancing methods, which need the fused step's flat
 * per-task gradients.
 */
export function createTrainingStep(net: MultiTaskNetwork, from?: AdamState): TrainingStep {
  if (FusedAdam.supported()) return createSplitTrainingStep(net, from);
  const { method } = lossBalancingOf(net.spec);
  if (method === 'gradnorm' || method === 'pcgrad')
    throw new Error(
      `training.lossBalancing "${method}" needs the per-task gradients of the fused training step (wasm or cpu backend); the ${tf.getBackend()} backend has none`,
    );
  return createStockTrainingStep(net);
}

/** The loss terms of a forward pass over a batch or a data-parallel shard of it. */
function lossesOf(net: MultiTaskNetwork) {
  const logVariance = net.params.get('uncertainty/logVariance') as tf.Tensor1D | undefined;
  const objective = createMultiTaskLoss(net.spec);
  return {
    losses: (batch: TrainingBatch, rng: Rng, shard?: ShardOfBatch): PassLosses => {
      const out = net.forward(batch.inputs, { training: true, rng });
      const { total, perTask } = objective.compute(out.logits, batch.labels, batch.mask, logVariance, shard);
      // Per-batch terms count by the shard's share of the rows, so that the shards' gradients sum to the batch's.
      const share = (loss: tf.Scalar) => (shard ? (tf.mul(loss, shard.share) as tf.Scalar) : loss);
      return {
        weighted: total,
        perTask,
        calibrators: out.calibrators.map(({ task, loss }) => ({ task, loss: share(loss) })),
        balance: share(out.balanceLoss),
      };
    },
    dispose: () => objective.dispose(),
  };
}

function createStockTrainingStep(net: MultiTaskNetwork): TrainingStep {
  const variables = [...net.params.values()];
  const objective = lossesOf(net);
  const optimizer = tf.train.adam(net.spec.training.learningRate);
  return {
    run: (batch, rng) => optimizer.minimize(() => totalLoss(objective.losses(batch, rng)), true, variables)!,
    balanceReport: () => ({ taskWeights: fixedWeights(net) }),
    optimizerState: () => undefined,
    optimizer: 'fresh',
    dispose() {
      optimizer.dispose();
      objective.dispose();
    },
  };
}

/** `from`: Adam's state to go on from, laid out as `net`'s weights (TrainOptions.optimizer); else a fresh Adam. */
export function createSplitTrainingStep(net: MultiTaskNetwork, from?: AdamState): SplitTrainingStep {
  if (!FusedAdam.supported()) throw new Error(`the fused training step needs the wasm or cpu backend`);
  const variables = [...net.params.values()];
  const objective = lossesOf(net);
  const adam = new FusedAdam(variables, net.spec.training.learningRate, from && flatState(net, from));
  const balancer = createBalancer(net, variables, adam);
  const local = new Float32Array(balancer.size);
  const passes = (batch: TrainingBatch, rng: Rng, shard?: ShardOfBatch): ForwardPasses => ({
    rng,
    gradient(f, of, into, offset, passRng = rng) {
      const { value, grads } = tf.variableGrads(() => f(objective.losses(batch, passRng, shard)), of);
      // A task's own loss reaches no other task's tower: those variables have no gradient, i.e. zeros.
      const ordered = of.map((v) => grads[v.name] ?? tf.zeros(v.shape));
      adam.gatherGradients(ordered, into, offset);
      tf.dispose(ordered);
      return value;
    },
  });
  return {
    size: balancer.size,
    run(batch, rng) {
      const value = balancer.contribute(passes(batch, rng), local);
      adam.apply(balancer.combine(local));
      return value;
    },
    gradients(batch, rng, into, shard) {
      const value = balancer.contribute(passes(batch, rng, shard), into);
      const loss = value.dataSync()[0];
      value.dispose();
      return loss;
    },
    apply: (g) => adam.apply(balancer.combine(g)),
    balanceReport: () => balancer.report(),
    optimizerState: () => publicState(net, adam.state()),
    optimizer: from ? 'continued' : 'fresh',
    dispose: () => objective.dispose(),
  };
}

/** An AdamState laid out as FusedAdam's flat gradient (the variables one after the other, in params order). */
function flatState(net: MultiTaskNetwork, { step, first, second }: AdamState): FlatAdamState {
  const size = net.parameterCount();
  const flat = (values: Map<string, Float32Array>) => {
    const out = new Float32Array(size);
    net.fromPublic(values, variableViews(net, out));
    return out;
  };
  return { step, first: flat(first), second: flat(second) };
}

/** The inverse of flatState, copied (toPublic copies): the optimizer's own arrays go on changing while it trains. */
function publicState(net: MultiTaskNetwork, { step, first, second }: FlatAdamState): AdamState {
  return { step, first: net.toPublic(variableViews(net, first)), second: net.toPublic(variableViews(net, second)) };
}

/** Each variable's part of a flat array laid out as FusedAdam's gradient: views, not copies. */
function variableViews(net: MultiTaskNetwork, flat: Float32Array): Map<string, Float32Array> {
  let offset = 0;
  return new Map([...net.params].map(([name, v]) => [name, flat.subarray(offset, (offset += v.size))]));
}
