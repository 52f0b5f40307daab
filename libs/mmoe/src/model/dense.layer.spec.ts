import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../backend/backend';
import { dense } from './dense.layer';

beforeAll(() => initBackend('wasm'));

describe('dense layer with a hand-written gradient', () => {
  it.each([true, false])('matches the value and gradients of tfjs own ops (relu = %s)', (relu) => {
    tf.tidy(() => {
      const x = tf.randomNormal([7, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomNormal([5, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
      const b = tf.randomNormal([3], 0, 1, 'float32', 3) as tf.Tensor1D;
      const upstream = tf.randomNormal([7, 3], 0, 1, 'float32', 4);
      const reference = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
        const y = tf.add(tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), bb);
        return tf.sum(tf.mul(relu ? tf.relu(y) : y, upstream));
      };
      const custom = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(dense(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, relu), upstream));
      expect(custom(x, w, b).arraySync()).toBeCloseTo(reference(x, w, b).arraySync() as number, 4);
      const expected = tf.grads(reference)([x, w, b]);
      const actual = tf.grads(custom)([x, w, b]);
      expected.forEach((g, i) => {
        expect(actual[i].shape).toEqual(g.shape);
        expect(tf.max(tf.abs(tf.sub(actual[i], g))).arraySync()).toBeLessThan(1e-4);
      });
    });
  });

  it('takes a batch of no rows: no output rows, zero gradients (XNNPACK left them as the memory held)', () => {
    tf.tidy(() => {
      const x = tf.zeros([0, 5]) as tf.Tensor2D;
      const w = tf.randomNormal([5, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
      const b = tf.randomNormal([3], 0, 1, 'float32', 3) as tf.Tensor1D;
      const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(dense(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, true));
      expect(dense(x, w, b, true).shape).toEqual([0, 3]);
      const [dx, dw, db] = tf.grads(f)([x, w, b]);
      expect([dx.shape, dw.shape, db.shape]).toEqual([[0, 5], [5, 3], [3]]);
      expect([...dw.dataSync(), ...db.dataSync()]).toEqual(new Array(18).fill(0));
    });
  });

  it('agrees with a finite-difference estimate', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([4, 3], 0, 1, 'float32', 5) as tf.Tensor2D;
      const w = tf.randomNormal([3, 2], 0, 1, 'float32', 6);
      const b = tf.zeros([2]) as tf.Tensor1D;
      const f = (ww: tf.Tensor) => tf.sum(tf.square(dense(x, ww as tf.Tensor2D, b, false)));
      const analytic = tf.grad(f)(w).dataSync();
      const values = w.dataSync();
      const eps = 1e-2;
      values.forEach((_, i) => {
        const plus = Float32Array.from(values);
        const minus = Float32Array.from(values);
        plus[i] += eps;
        minus[i] -= eps;
        const numeric =
          ((f(tf.tensor(plus, w.shape)).arraySync() as number) - (f(tf.tensor(minus, w.shape)).arraySync() as number)) /
          (2 * eps);
        expect(analytic[i]).toBeCloseTo(numeric, 1);
      });
    });
  });
});
