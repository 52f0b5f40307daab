import * as tf from '@tensorflow/tfjs';

/**
 * y = act(x·W + b) with a hand-written gradient. tfjs's automatic gradient of matMul uses transposed matmuls, which
 * wasm runs on a slow generic loop; here every product is a plain 2-D matmul (the XNNPACK path), with explicit
 * transposes.
 */
/**
 * a·b, or its zeros when a has no rows or no columns: attention's unit gets no rows in a batch whose lists are all
 * empty, and XNNPACK refuses a product over none ("xnn_create_fully_connected_nc_f32 … status 2"), its output then
 * whatever the memory held: the unit's kernel went NaN in training.
 */
function product(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return a.shape[0] === 0 || a.shape[1] === 0 ? tf.zeros([a.shape[0], b.shape[1]]) : tf.matMul(a, b);
}

function makeDense(relu: boolean) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, b] = args as tf.Tensor2D[];
    const save = args[3] as tf.GradSaveFunc;
    const y =
      x.shape[0] === 0
        ? tf.zeros([0, w.shape[1]])
        : tf.fused.matMul({ a: x, b: w, bias: b, activation: relu ? 'relu' : 'linear' });
    save(relu ? [x, w, y] : [x, w]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, ws, ys] = saved as tf.Tensor2D[];
        // A sum over no rows is left as the memory held too.
        if (xs.shape[0] === 0) return [tf.zerosLike(xs), tf.zerosLike(ws), tf.zeros([ws.shape[1]])];
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
    value: product(x, w),
    gradFunc: (dy, saved) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [product(dy as tf.Tensor2D, tf.transpose(ws)), product(tf.transpose(xs), dy as tf.Tensor2D)];
    },
  };
}) as (x: tf.Tensor2D, kernel: tf.Tensor2D) => tf.Tensor2D;
