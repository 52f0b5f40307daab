import * as tf from '@tensorflow/tfjs';

export interface GateOutput {
  /** [batch, experts]; each row sums to 1 (top-k: exactly k non-zero entries). */
  weights: tf.Tensor2D;
  /** [batch, experts] 0/1, the experts an example is routed to (all ones for a softmax gate). */
  routed: tf.Tensor2D;
  /** Load-balancing loss (unweighted); 0 for a softmax gate. */
  balanceLoss: tf.Scalar;
}

export interface SoftmaxGateOptions {
  temperature?: number;
  /** Training only: drop each expert of each example with probability `rate`, renormalising the kept weights. */
  dropout?: { rate: number; seed: number };
}

export function softmaxGate(logits: tf.Tensor2D, { temperature = 1, dropout }: SoftmaxGateOptions = {}): GateOutput {
  let weights = tf.softmax(temperature === 1 ? logits : tf.div(logits, temperature)) as tf.Tensor2D;
  if (dropout && dropout.rate > 0) {
    const keep = tf.cast(
      tf.greaterEqual(tf.randomUniform(logits.shape, 0, 1, 'float32', dropout.seed), dropout.rate),
      'float32',
    );
    const kept = tf.mul(weights, keep);
    const total = tf.sum(kept, 1, true);
    // A row whose experts were all dropped keeps them all: renormalising nothing would zero its fused output. (From
    // the mask alone, which has no gradient: softmax weights are never 0.)
    const any = tf.cast(tf.greater(tf.sum(keep, 1, true), 0), 'float32');
    weights = tf.add(
      tf.mul(tf.div(kept, tf.maximum(total, 1e-12)), any),
      tf.mul(weights, tf.sub(1, any)),
    ) as tf.Tensor2D;
  }
  return { weights, routed: tf.onesLike(logits), balanceLoss: tf.scalar(0) };
}

/**
 * Noisy top-k gating (Shazeer et al. 2017, "Outrageously large neural networks", §2.1 and appendix A).
 * H = clean + N(0,1)·softplus(noiseLogits) in training (clean alone otherwise); keep the k largest of H per example,
 * softmax over them, zero elsewhere. The balance loss is CV²(importance) + CV²(load), where importance sums the gate
 * weights per expert and load sums each expert's smooth probability of being in the top k.
 */
export function noisyTopKGate(
  clean: tf.Tensor2D,
  k: number,
  noise?: { logits: tf.Tensor2D; standardNormal: tf.Tensor2D },
): GateOutput {
  const experts = clean.shape[1];
  if (!(k >= 1 && k < experts)) throw new Error(`top-k gating needs 1 <= k < experts (k = ${k}, experts = ${experts})`);
  const noiseStd = noise ? tf.add(tf.softplus(noise.logits), 1e-2) : undefined;
  const h = noiseStd ? tf.add(clean, tf.mul(noise!.standardNormal, noiseStd)) : clean;
  const [routed, threshold] = tf.split(topKRouting(k)(h), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
  const masked = tf.add(tf.mul(h, routed), tf.mul(tf.sub(1, routed), -1e9));
  const weights = tf.mul(tf.softmax(masked), routed) as tf.Tensor2D;

  const importance = tf.sum(weights, 0) as tf.Tensor1D;
  let load: tf.Tensor1D;
  if (noiseStd) {
    const z = tf.div(tf.sub(clean, threshold), noiseStd);
    const probInTopK = tf.mul(0.5, tf.add(1, tf.erf(tf.div(z, Math.SQRT2))));
    load = tf.sum(probInTopK, 0) as tf.Tensor1D;
  } else {
    load = tf.sum(routed, 0) as tf.Tensor1D;
  }
  return { weights, routed, balanceLoss: tf.add(cvSquared(importance), cvSquared(load)) };
}

/** Squared coefficient of variation: 0 when all entries are equal, growing as they spread. */
export function cvSquared(values: tf.Tensor1D): tf.Scalar {
  const { mean, variance } = tf.moments(values);
  return tf.div(variance, tf.add(tf.square(mean), 1e-10)) as tf.Scalar;
}

/**
 * [routed | threshold] from H, as a constant for the gradient (tfjs has no TopK gradient, and selection is not
 * differentiated in the paper either). routed is the 0/1 top-k mask — topk breaks ties by index, so even equal
 * logits route exactly k experts. threshold is, per expert, the value it must beat to be in the top k with the
 * other experts fixed: the (k+1)-th largest value for a routed expert, the k-th for the others.
 */
function topKRouting(k: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    (args[1] as tf.GradSaveFunc)([h]);
    const experts = h.shape[1];
    const top = tf.topk(h, k + 1);
    // wasm's OneHot writes zeros when asked for float32 output, hence the int32 one-hot and a cast.
    const routed = tf.cast(tf.sum(tf.oneHot(tf.slice(top.indices, [0, 0], [-1, k]), experts), 1), 'float32');
    const kth = tf.slice(top.values, [0, k - 1], [-1, 1]);
    const next = tf.slice(top.values, [0, k], [-1, 1]);
    const threshold = tf.add(tf.mul(routed, next), tf.mul(tf.sub(1, routed), kth));
    return {
      value: tf.concat([routed, threshold], 1),
      gradFunc: (_dy: tf.Tensor, saved: tf.Tensor[]) => tf.zerosLike(saved[0]),
    };
  });
}
