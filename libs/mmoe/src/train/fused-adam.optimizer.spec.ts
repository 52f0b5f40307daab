import * as tf from '@tensorflow/tfjs';

import '@tensorflow/tfjs-backend-wasm';

import { registerScatterAddKernel } from '../backend/scatter-add.kernel';
import { FusedAdam, registerFusedAdamKernel } from './fused-adam.optimizer';

describe.each(['wasm', 'cpu'] as const)('fused Adam on %s', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    registerScatterAddKernel(backend);
    registerFusedAdamKernel(backend);
  });

  it('takes the same steps as tf.train.adam, in one kernel, and matmuls see the new weights', () => {
    const initial = [tf.randomNormal([5, 3], 0, 1, 'float32', 1), tf.randomNormal([3], 0, 1, 'float32', 2)];
    const stock = initial.map((t) => tf.variable(t.clone()));
    const fused = initial.map((t) => tf.variable(t.clone()));
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 3);
    // A fused matmul (XNNPACK on wasm, which caches packed weights per tensor) reads the updated kernel every step.
    const loss = (w: tf.Variable[]) => () =>
      tf.sum(tf.square(tf.fused.matMul({ a: x, b: w[0], bias: w[1], activation: 'relu' }))) as tf.Scalar;
    const reference = tf.train.adam(0.01);
    const adam = new FusedAdam(fused, 0.01);
    const gradients = new Float32Array(adam.size);
    for (let step = 0; step < 5; step++) {
      reference.minimize(loss(stock), false, stock);
      const { value, grads } = tf.variableGrads(loss(fused), fused);
      const ordered = fused.map((v) => grads[v.name]);
      adam.gatherGradients(ordered, gradients);
      tf.dispose([value, ...ordered]);
      const profile = tf.tidy(() => {
        const before = tf.memory().numTensors;
        adam.apply(gradients);
        return tf.memory().numTensors - before;
      });
      expect(profile).toBe(0); // in place: no new tensor
    }
    stock.forEach((v, i) => {
      const expected = v.dataSync();
      const actual = fused[i].dataSync();
      expected.forEach((e, j) => expect(actual[j]).toBeCloseTo(e, 4));
    });
    tf.dispose([...initial, ...stock, ...fused, x]);
    reference.dispose();
  });

  it('is one kernel whatever the number of variables', async () => {
    const variables = Array.from({ length: 20 }, (_, i) => tf.variable(tf.fill([3], i)));
    const adam = new FusedAdam(variables, 0.1);
    const profile = await tf.profile(() => adam.apply(new Float32Array(adam.size).fill(1)));
    expect(profile.kernelNames).toEqual(['MmoeFusedAdam']);
    // First step: m̂ = g and v̂ = g², so every weight moves by -lr·g/(|g| + ε).
    expect(variables[5].dataSync()[0]).toBeCloseTo(5 - 0.1, 5);
    tf.dispose(variables);
  });
});
