import * as tf from '@tensorflow/tfjs';

import { lossBalancingOf } from '../model-spec/model-spec.schema';
import { MultiTaskNetwork } from '../model/network';
import { taskType } from '../tasks/task-types';
import { Rng } from '../util/random';
import { FusedAdam } from './fused-adam.optimizer';

/** The loss terms of one forward pass over a batch (or a data-parallel shard of it: per-batch terms scaled by its share). */
export interface PassLosses {
  /** The spec-weighted task losses (with learnt log-variances under uncertainty weighting). */
  weighted: tf.Scalar;
  /** [tasks] each task's mean loss over its labelled rows. */
  perTask: tf.Tensor1D;
  /** AITM's calibrator terms, each its task's. */
  calibrators: { task: number; loss: tf.Scalar }[];
  /** The gates' balance loss, which belongs to no task. */
  balance: tf.Scalar;
}

/** A batch's forward passes: each re-runs the network, so every pass of one step must be given the same rng seed. */
export interface ForwardPasses {
  readonly rng: Rng;
  /**
   * The gradient of f(the pass's losses) w.r.t. `variables`, gathered one after the other into `into` from
   * `offset`; returns f's value (owned by the caller).
   */
  gradient(
    f: (losses: PassLosses) => tf.Scalar,
    variables: tf.Variable[],
    into: Float32Array,
    offset: number,
    rng?: Rng,
  ): tf.Scalar;
}

export interface BalanceReport {
  /** Per task (spec order), the weight its loss has now (learnt ones included). */
  taskWeights: number[];
  /** pcgrad: the share of task pairs whose gradients conflicted (negative inner product), over the steps reported. */
  gradientConflicts?: number;
}

/** How a step's gradient is made from a batch's losses, per training.lossBalancing method. */
export interface Balancer {
  /** Floats a batch (or shard) contributes; data-parallel replicas sum them before combine. */
  readonly size: number;
  /** Writes the contribution into `into` (`size` floats); returns the loss. */
  contribute(passes: ForwardPasses, into: Float32Array): tf.Scalar;
  /** The (summed) contribution → every parameter's gradient (as FusedAdam lays it out); updates learnt weights. */
  combine(contribution: Float32Array): Float32Array;
  /** Reports, and starts counting anew. */
  report(): BalanceReport;
}

/** The spec's task weights (fixed weighting); with uncertainty weighting, each one's learnt factor exp(−s_t)·c_t too. */
export function fixedWeights(net: MultiTaskNetwork): number[] {
  const logVariance = net.params.get('uncertainty/logVariance');
  const s = logVariance ? logVariance.dataSync() : undefined;
  return net.spec.tasks.map((t, i) => t.weight * (s ? Math.exp(-s[i]) * taskType(t).uncertaintyScale : 1));
}

export function createBalancer(net: MultiTaskNetwork, variables: tf.Variable[], adam: FusedAdam): Balancer {
  const balancing = lossBalancingOf(net.spec);
  switch (balancing.method) {
    case 'fixed':
    case 'uncertainty':
      return {
        size: adam.size,
        // One pass, on the caller's rng: the same gate noise draws as before there were other methods.
        contribute: (passes, into) => passes.gradient(totalLoss, variables, into, 0),
        combine: (g) => g,
        report: () => ({ taskWeights: fixedWeights(net) }),
      };
    case 'gradnorm':
      return new GradNorm(net, variables, adam.size, balancing.alpha);
    case 'pcgrad':
      return new PcGrad(net, variables, adam.size);
  }
}

/** What createBalancer(net, …).size will be: data-parallel runners size their exchange before the steps exist. */
export function contributionSize(net: MultiTaskNetwork): number {
  const parameters = [...net.params.values()].reduce((s, v) => s + v.size, 0);
  const tasks = net.spec.tasks.length;
  switch (lossBalancingOf(net.spec).method) {
    case 'gradnorm':
      return parameters + tasks * sizeOf(net.lastSharedKernels()) + tasks;
    case 'pcgrad':
      return tasks * parameters;
    default:
      return parameters;
  }
}

/** What fixed and uncertainty weighting minimise: the weighted task losses, the calibrators and the balance loss. */
export function totalLoss({ weighted, calibrators, balance }: PassLosses): tf.Scalar {
  return tf.addN([weighted, balance, ...calibrators.map((c) => c.loss)]) as tf.Scalar;
}

/** Task t's own loss: its spec weight times its mean loss, plus its calibrator (AITM). */
function taskLoss(net: MultiTaskNetwork, { perTask, calibrators }: PassLosses, t: number): tf.Scalar {
  const own = tf.mul(tf.slice(perTask, t, 1), net.spec.tasks[t].weight);
  const calibrator = calibrators.find((c) => c.task === t);
  return tf.sum(calibrator ? tf.add(own, calibrator.loss) : own) as tf.Scalar;
}

const sizeOf = (variables: tf.Variable[]) => variables.reduce((s, v) => s + v.size, 0);

/**
 * GradNorm (Chen et al., ICML 2018, Algorithm 1). The network learns Σ w_t·L_t (+ the balance loss), L_t each task's
 * own loss. After each step's gradient, the weights move as gradNormUpdate says, with W the kernels of the last shared
 * layer (MultiTaskNetwork.lastSharedKernels).
 *
 * A contribution is the gradient of Σ w_t·L_t, then each ∇_W L_t, then each L_t: all sums over data-parallel shards,
 * so every replica combines the batch's exact figures. A step costs one full and T partial (down to W) backward
 * passes, each after its own forward pass (tfjs keeps no tape between gradients).
 */
class GradNorm implements Balancer {
  readonly size: number;
  private readonly tasks: number;
  private readonly shared: tf.Variable[];
  private readonly sharedSize: number;
  private readonly state: GradNormState;
  private readonly adam: ScalarAdam;

  constructor(
    private readonly net: MultiTaskNetwork,
    private readonly variables: tf.Variable[],
    private readonly parameters: number,
    private readonly alpha: number,
  ) {
    this.tasks = net.spec.tasks.length;
    this.shared = net.lastSharedKernels();
    this.sharedSize = sizeOf(this.shared);
    this.size = parameters + this.tasks * this.sharedSize + this.tasks;
    this.state = {
      weights: new Float64Array(this.tasks).fill(1),
      initialLoss: new Float64Array(this.tasks).fill(NaN),
    };
    this.adam = new ScalarAdam(this.tasks, net.spec.training.learningRate);
  }

  contribute(passes: ForwardPasses, into: Float32Array): tf.Scalar {
    const seed = passes.rng.seed();
    const { weights } = this.state;
    const w = tf.tensor1d(Array.from(weights, (v, t) => v * this.net.spec.tasks[t].weight));
    const value = passes.gradient(
      (losses) => {
        const weightedTasks = tf.sum(tf.mul(losses.perTask, w)) as tf.Scalar;
        const calibrators = losses.calibrators.map((c) => tf.mul(c.loss, weights[c.task]) as tf.Scalar);
        return tf.addN([weightedTasks, losses.balance, ...calibrators]) as tf.Scalar;
      },
      this.variables,
      into,
      0,
      new Rng(seed),
    );
    w.dispose();
    const lossesAt = this.parameters + this.tasks * this.sharedSize;
    for (let t = 0; t < this.tasks; t++) {
      const loss = passes.gradient(
        (losses) => taskLoss(this.net, losses, t),
        this.shared,
        into,
        this.parameters + t * this.sharedSize,
        new Rng(seed),
      );
      into[lossesAt + t] = loss.dataSync()[0];
      loss.dispose();
    }
    return value;
  }

  combine(contribution: Float32Array): Float32Array {
    const gradientOf = (t: number) => {
      const at = this.parameters + t * this.sharedSize;
      return contribution.subarray(at, at + this.sharedSize);
    };
    const norms = Array.from({ length: this.tasks }, (_, t) => Math.sqrt(dot(gradientOf(t), gradientOf(t))));
    const lossesAt = this.parameters + this.tasks * this.sharedSize;
    const losses = Array.from(contribution.subarray(lossesAt, lossesAt + this.tasks));
    gradNormUpdate(this.state, norms, losses, this.alpha, this.adam);
    return contribution.subarray(0, this.parameters);
  }

  report(): BalanceReport {
    return { taskWeights: Array.from(this.state.weights, (w, t) => w * this.net.spec.tasks[t].weight) };
  }
}

/** GradNorm's learnt weights (one per task, summing to the number of tasks) and each task's first loss. */
export interface GradNormState {
  weights: Float64Array;
  /** NaN until the task's first batch with labels. */
  initialLoss: Float64Array;
}

/**
 * One GradNorm update of the weights from each task's ‖∇_W L_t‖ (unweighted) and loss L_t in this batch. With
 * G_t = w_t·‖∇_W L_t‖, L̃_t = L_t / L_t(0) and r_t = L̃_t / mean(L̃), the weights take an Adam step along
 * ∂/∂w Σ |G_t − mean(G)·r_t^α| with the target held constant, i.e. sign(G_t − target_t)·‖∇_W L_t‖; then they are
 * floored at 1e-3 of their mean and renormalised to sum to the number of tasks. L_t(0) is a task's loss in the first
 * batch that labels it; a task without labels in the batch (L_t = 0) sits the update out.
 */
export function gradNormUpdate(
  state: GradNormState,
  norms: number[],
  losses: number[],
  alpha: number,
  adam: ScalarAdam,
): void {
  const { weights, initialLoss } = state;
  const T = weights.length;
  const active = losses.flatMap((l, t) => (l > 0 ? [t] : []));
  for (const t of active) if (Number.isNaN(initialLoss[t])) initialLoss[t] = losses[t];
  if (active.length < 2) return;
  const mean = (f: (t: number) => number) => active.reduce((s, t) => s + f(t), 0) / active.length;
  const meanNorm = mean((t) => weights[t] * norms[t]);
  const meanRate = mean((t) => losses[t] / initialLoss[t]);
  const gradient = new Float64Array(T);
  for (const t of active) {
    const target = meanNorm * (losses[t] / initialLoss[t] / meanRate) ** alpha;
    gradient[t] = Math.sign(weights[t] * norms[t] - target) * norms[t];
  }
  adam.step(weights, gradient);
  const floor = (1e-3 * weights.reduce((s, v) => s + Math.max(v, 0), 0)) / T;
  for (let t = 0; t < T; t++) weights[t] = Math.max(weights[t], floor);
  const sum = weights.reduce((s, v) => s + v, 0);
  for (let t = 0; t < T; t++) weights[t] *= T / sum;
}

/**
 * PCGrad (Yu et al., NeurIPS 2020, Algorithm 1) over every parameter (projectConflicts). g_t is the gradient of task
 * t's own loss (its spec weight times its mean loss, plus its calibrator) and of an equal share of the balance loss,
 * which belongs to no task, so that the g_t sum to the fixed-weight gradient where nothing conflicts.
 *
 * A contribution is the T gradients, summed over data-parallel shards before the projection (exact, at T times the
 * exchange). The task order comes from a seeded generator every replica advances alike. A step costs T forward and
 * backward passes.
 */
class PcGrad implements Balancer {
  readonly size: number;
  private readonly tasks: number;
  private readonly combined: Float32Array;
  private readonly projected: Float64Array;
  private readonly order: Rng;
  private conflicts = 0;
  private pairs = 0;

  constructor(
    private readonly net: MultiTaskNetwork,
    private readonly variables: tf.Variable[],
    private readonly parameters: number,
  ) {
    this.tasks = net.spec.tasks.length;
    this.size = this.tasks * parameters;
    this.combined = new Float32Array(parameters);
    this.projected = new Float64Array(parameters);
    this.order = new Rng(net.spec.training.seed ^ 0x9c9ad);
  }

  contribute(passes: ForwardPasses, into: Float32Array): tf.Scalar {
    const seed = passes.rng.seed();
    const share = 1 / this.tasks;
    const values = Array.from({ length: this.tasks }, (_, t) =>
      passes.gradient(
        (losses) => tf.add(taskLoss(this.net, losses, t), tf.mul(losses.balance, share)) as tf.Scalar,
        this.variables,
        into,
        t * this.parameters,
        new Rng(seed),
      ),
    );
    const total = tf.addN(values) as tf.Scalar;
    tf.dispose(values);
    return total;
  }

  combine(contribution: Float32Array): Float32Array {
    const P = this.parameters;
    const gradients = Array.from({ length: this.tasks }, (_, t) => contribution.subarray(t * P, (t + 1) * P));
    const { conflicts, pairs } = projectConflicts(gradients, this.order, this.combined, this.projected);
    this.conflicts += conflicts;
    this.pairs += pairs;
    return this.combined;
  }

  report(): BalanceReport {
    const gradientConflicts = this.pairs === 0 ? 0 : this.conflicts / this.pairs;
    this.conflicts = 0;
    this.pairs = 0;
    return { taskWeights: this.net.spec.tasks.map((t) => t.weight), gradientConflicts };
  }
}

/**
 * PCGrad's projection: each task's gradient g_i, against every other task's original gradient g_j in a random order
 * (drawn from `order` for each i), loses its projection onto g_j where they conflict (g_i'·g_j < 0); `out` gets the
 * sum of the projected gradients. Returns the ordered pairs counted and those whose original gradients conflict.
 */
export function projectConflicts(
  gradients: Float32Array[],
  order: Rng,
  out: Float32Array,
  scratch: Float64Array = new Float64Array(out.length),
): { conflicts: number; pairs: number } {
  const P = out.length;
  const squared = gradients.map((g) => dot(g, g));
  let conflicts = 0;
  let pairs = 0;
  out.fill(0);
  gradients.forEach((g, i) => {
    for (let k = 0; k < P; k++) scratch[k] = g[k];
    for (const j of order.permutation(gradients.length)) {
      if (j === i) continue;
      pairs++;
      if (dot(g, gradients[j]) < 0) conflicts++;
      const inner = dot(scratch, gradients[j]);
      if (inner < 0 && squared[j] > 0) {
        const scale = inner / squared[j];
        for (let k = 0; k < P; k++) scratch[k] -= scale * gradients[j][k];
      }
    }
    for (let k = 0; k < P; k++) out[k] += scratch[k];
  });
  return { conflicts, pairs };
}

/** Σ a·b in float64. */
function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += a[k] * b[k];
  return sum;
}

/** Adam (tfjs's constants) on a few plain numbers: GradNorm's task weights. */
export class ScalarAdam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(
    size: number,
    private readonly learningRate: number,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  step(values: Float64Array, gradient: Float64Array): void {
    this.t++;
    const [beta1, beta2, epsilon] = [0.9, 0.999, 1e-7];
    for (let i = 0; i < values.length; i++) {
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * gradient[i];
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * gradient[i] ** 2;
      const mHat = this.m[i] / (1 - beta1 ** this.t);
      const vHat = this.v[i] / (1 - beta2 ** this.t);
      values[i] -= (this.learningRate * mHat) / (Math.sqrt(vHat) + epsilon);
    }
  }
}
