import * as tf from '@tensorflow/tfjs';

/**
 * y = act(x·W + b) with a hand-written gradient. tfjs's automatic gradient of matMul uses transposed matmuls, which
 * wasm runs on a slow generic loop; here every product is a plain 2-D matmul (the XNNPACK path), with explicit
 * transposes.
 */
function makeDense(relu: boolean) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, b] = args as tf.Tensor2D[];
    const save = args[3] as tf.GradSaveFunc;
    const y = tf.fused.matMul({ a: x, b: w, bias: b, activation: relu ? 'relu' : 'linear' });
    save(relu ? [x, w, y] : [x, w]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, ws, ys] = saved as tf.Tensor2D[];
        const g = (relu ? tf.mul(dy, tf.step(ys)) : dy) as tf.Tensor2D;
        return [tf.matMul(g, tf.transpose(ws)), tf.matMul(tf.transpose(xs), g), tf.sum(g, 0)];
      },
    };
  });
}

const denseRelu = makeDense(true);
const denseLinear = makeDense(false);

export function dense(x: tf.Tensor2D, kernel: tf.Tensor2D, bias: tf.Tensor1D, relu: boolean): tf.Tensor2D {
  return (relu ? denseRelu : denseLinear)(x, kernel, bias) as tf.Tensor2D;
}

/** y = x·W without a bias (attention projections), with the same plain-matmul gradient. */
export const linear = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w] = args as tf.Tensor2D[];
  (args[2] as tf.GradSaveFunc)([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy, saved) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tf.Tensor2D)];
    },
  };
}) as (x: tf.Tensor2D, kernel: tf.Tensor2D) => tf.Tensor2D;
