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

  it('goes on from a state as if it had never stopped', () => {
    const start = [tf.randomNormal([4, 2], 0, 1, 'float32', 4), tf.randomNormal([2], 0, 1, 'float32', 5)];
    const gradient = (step: number) => Float32Array.from({ length: 10 }, (_, i) => Math.sin(step * 10 + i));
    const run = (variables: tf.Variable[], adam: FusedAdam, from: number, to: number) => {
      for (let step = from; step < to; step++) adam.apply(gradient(step));
      return variables.map((v) => v.dataSync().slice());
    };
    // Copies, not clones: a clone shares its memory, which the kernel writes in place.
    const copies = () => start.map((t) => tf.variable(tf.tensor(t.dataSync().slice(), t.shape)));
    const whole = copies();
    const expected = run(whole, new FusedAdam(whole, 0.05), 0, 6);
    const split = copies();
    const first = new FusedAdam(split, 0.05);
    run(split, first, 0, 3);
    const { step, first: m, second: v } = first.state();
    const second = new FusedAdam(split, 0.05, { step, first: m.slice(), second: v.slice() });
    expect(run(split, second, 3, 6)).toEqual(expected);
    expect(second.state().step).toBe(6);
    const fresh = copies();
    const restarted = new FusedAdam(fresh, 0.05);
    run(fresh, restarted, 0, 3);
    expect(run(fresh, new FusedAdam(fresh, 0.05), 3, 6)).not.toEqual(expected);
    expect(
      () => new FusedAdam(fresh, 0.05, { step: 1, first: new Float32Array(3), second: new Float32Array(3) }),
    ).toThrow(/3 and 3 values, the variables 10/);
    expect(
      () => new FusedAdam(fresh, 0.05, { step: 1, first: new Float32Array(10), second: new Float32Array(3) }),
    ).toThrow(/10 and 3 values, the variables 10/);
    tf.dispose([...start, ...whole, ...split, ...fresh]);
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
