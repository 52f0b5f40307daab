import * as tf from '@tensorflow/tfjs';

import { float32View, markWritten } from '../backend/backend-memory';

const KERNEL = 'MmoeFusedAdam';
/** tfjs's Adam defaults (its epsilon is the float32 backends' 1e-7), so that both paths train alike. */
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-7;

/** Adam's moments and step count, laid out as FusedAdam's flat gradient. */
export interface FlatAdamState {
  step: number;
  first: Float32Array;
  second: Float32Array;
}

/** One update: what the kernel's run applies. */
interface AdamUpdate {
  /** Every variable's gradient, one after the other in input order. */
  gradients: Float32Array;
  firstMoment: Float32Array;
  secondMoment: Float32Array;
  learningRate: number;
  /** 1 − β1ᵗ and 1 − β2ᵗ of this step. */
  correction1: number;
  correction2: number;
}

/**
 * Adam (Kingma & Ba 2015, as tfjs's tf.train.adam computes it) over all parameters in one kernel that writes each
 * variable's memory in place. The stock optimizer runs about ten kernels per variable, each tens of µs of dispatch,
 * which is most of a small model's step; this loop costs a few ns per parameter. The moments live in plain arrays
 * beside the backend, indexed like the flat gradient.
 */
export class FusedAdam {
  readonly size: number;
  private readonly firstMoment: Float32Array;
  private readonly secondMoment: Float32Array;
  /** The kernel's inputs: integer keys keep the variables in order. */
  private readonly inputs: tf.NamedTensorMap;
  private step: number;

  /**
   * `from`: the moments and step count to go on from, laid out as the gradient; its arrays are taken over, not
   * copied.
   */
  constructor(
    private readonly variables: tf.Variable[],
    private readonly learningRate: number,
    from?: FlatAdamState,
  ) {
    this.size = variables.reduce((size, v) => size + v.size, 0);
    if (from && (from.first.length !== this.size || from.second.length !== this.size))
      throw new Error(
        `Adam's state has ${from.first.length} and ${from.second.length} values, the variables ${this.size}`,
      );
    this.firstMoment = from?.first ?? new Float32Array(this.size);
    this.secondMoment = from?.second ?? new Float32Array(this.size);
    this.step = from?.step ?? 0;
    this.inputs = Object.fromEntries(variables.map((v, i) => [i, v]));
  }

  /** Where the optimizer stands: its step count and its own moment arrays, which its next steps change. */
  state(): FlatAdamState {
    return { step: this.step, first: this.firstMoment, second: this.secondMoment };
  }

  /** Whether the active backend can run the fused kernel (wasm and cpu: JS-visible memory); elsewhere stock Adam. */
  static supported(): boolean {
    return tf.getKernel(KERNEL, tf.getBackend()) !== undefined;
  }

  /**
   * Copies gradient tensors one after the other into `flat` from `offset` (all of them in variable order: the layout
   * apply() reads), without a round trip through dataSync's copies.
   */
  gatherGradients(grads: tf.Tensor[], flat: Float32Array, offset = 0): void {
    const backend = tf.backend();
    for (const g of grads) {
      flat.set(float32View(backend, g), offset);
      offset += g.size;
    }
  }

  /** One update from a flat gradient (as gatherGradients lays it out). */
  apply(gradients: Float32Array): void {
    this.step++;
    pending = {
      gradients,
      firstMoment: this.firstMoment,
      secondMoment: this.secondMoment,
      learningRate: this.learningRate,
      correction1: 1 - BETA1 ** this.step,
      correction2: 1 - BETA2 ** this.step,
    };
    try {
      tf.engine().runKernel(KERNEL, this.inputs, {});
    } finally {
      pending = undefined;
    }
  }
}

/**
 * The update the kernel's run in progress applies, handed over beside runKernel (which is synchronous): tfjs types a
 * kernel's attributes as plain values, and these are typed arrays.
 */
let pending: AdamUpdate | undefined;

export function registerFusedAdamKernel(backendName: 'wasm' | 'cpu'): void {
  if (tf.getKernel(KERNEL, backendName)) return;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      if (!pending) throw new Error(`${KERNEL} runs only from FusedAdam.apply`);
      const { gradients: g, firstMoment: m, secondMoment: s, learningRate, correction1, correction2 } = pending;
      let k = 0;
      for (const variable of Object.values(inputs)) {
        const w = float32View(backend, variable!);
        for (let i = 0; i < w.length; i++, k++) {
          const gk = g[k];
          const mk = BETA1 * m[k] + (1 - BETA1) * gk;
          const sk = BETA2 * s[k] + (1 - BETA2) * gk * gk;
          m[k] = mk;
          s[k] = sk;
          w[i] -= (learningRate * (mk / correction1)) / (Math.sqrt(sk / correction2) + EPSILON);
        }
        markWritten(backend, variable!);
      }
      return [];
    },
  });
}
