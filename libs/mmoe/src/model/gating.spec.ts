import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../backend/backend';
import { cvSquared, noisyTopKGate, softmaxGate } from './gating';

beforeAll(() => initBackend('wasm'));

const randomLogits = (rows: number, experts: number, seed: number) =>
  tf.randomNormal([rows, experts], 0, 2, 'float32', seed) as tf.Tensor2D;

describe('softmax gate', () => {
  it('gives each example weights that sum to 1', () => {
    const sums = tf.tidy(() => tf.sum(softmaxGate(randomLogits(64, 8, 1)).weights, 1).arraySync() as number[]);
    sums.forEach((s) => expect(s).toBeCloseTo(1, 5));
  });
});

describe('softmax gate regularisation', () => {
  it('temperature above 1 flattens the weights, below 1 sharpens them', () => {
    tf.tidy(() => {
      const logits = randomLogits(64, 4, 3);
      const largest = (t: number) =>
        tf.mean(tf.max(softmaxGate(logits, { temperature: t }).weights, 1)).arraySync() as number;
      expect(largest(4)).toBeLessThan(largest(1));
      expect(largest(0.25)).toBeGreaterThan(largest(1));
    });
  });

  it('dropout zeroes about `rate` of the experts and renormalises the rest; a fully dropped row keeps all', () => {
    tf.tidy(() => {
      const logits = randomLogits(2000, 4, 5);
      const { weights } = softmaxGate(logits, { dropout: { rate: 0.5, seed: 9 } });
      (tf.sum(weights, 1).arraySync() as number[]).forEach((s) => expect(s).toBeCloseTo(1, 5));
      const dropped = tf.mean(tf.cast(tf.equal(weights, 0), 'float32')).arraySync() as number;
      // P(dropped) = 0.5, minus the rows where all four were (1/16 of rows keep them all).
      expect(dropped).toBeGreaterThan(0.4);
      expect(dropped).toBeLessThan(0.5);
      const all = softmaxGate(logits, { dropout: { rate: 0.999999, seed: 2 } }).weights;
      expect(tf.max(tf.abs(tf.sub(all, tf.softmax(logits)))).arraySync()).toBeLessThan(1e-6);
    });
  });
});

describe('noisy top-k gate', () => {
  const nonZeroPerRow = (w: tf.Tensor2D) =>
    tf.tidy(() => tf.sum(tf.cast(tf.greater(w, 0), 'int32'), 1).arraySync()) as number[];

  it.each([1, 2, 3])('routes every example to exactly k = %i experts, weights summing to 1', (k) => {
    tf.tidy(() => {
      const gate = noisyTopKGate(randomLogits(200, 6, k), k);
      expect(new Set(nonZeroPerRow(gate.weights))).toEqual(new Set([k]));
      (tf.sum(gate.weights, 1).arraySync() as number[]).forEach((s) => expect(s).toBeCloseTo(1, 5));
      expect(tf.sum(gate.routed).arraySync()).toBe(200 * k);
    });
  });

  it('keeps exactly k even when logits tie', () => {
    tf.tidy(() =>
      expect(new Set(nonZeroPerRow(noisyTopKGate(tf.zeros([10, 5]) as tf.Tensor2D, 2).weights))).toEqual(new Set([2])),
    );
  });

  it('adds noise only when given (training), and still keeps exactly k', () => {
    tf.tidy(() => {
      const clean = randomLogits(100, 8, 7);
      const noise = { logits: tf.fill([100, 8], 3) as tf.Tensor2D, standardNormal: randomLogits(100, 8, 9) };
      const noisy = noisyTopKGate(clean, 2, noise);
      const quiet = noisyTopKGate(clean, 2);
      expect(new Set(nonZeroPerRow(noisy.weights))).toEqual(new Set([2]));
      expect(tf.sum(tf.abs(tf.sub(noisy.routed, quiet.routed))).arraySync()).toBeGreaterThan(0);
      expect(Number.isFinite(noisy.balanceLoss.arraySync())).toBe(true);
    });
  });

  it('lets the balance loss reach the gate logits through the smooth load estimate', () => {
    const clean = tf.variable(randomLogits(50, 4, 3));
    const noise = { logits: tf.zeros([50, 4]) as tf.Tensor2D, standardNormal: randomLogits(50, 4, 4) };
    const grad = tf.tidy(() => tf.grad((c) => noisyTopKGate(c as tf.Tensor2D, 2, noise).balanceLoss)(clean));
    expect(tf.tidy(() => tf.sum(tf.abs(grad)).arraySync())).toBeGreaterThan(0);
    tf.dispose([clean, grad, noise.logits, noise.standardNormal]);
  });
});

describe('balance loss', () => {
  it('is 0 for an even load and grows with imbalance', () => {
    const cv = (v: number[]) => tf.tidy(() => cvSquared(tf.tensor1d(v)).arraySync());
    expect(cv([5, 5, 5, 5])).toBeCloseTo(0, 6);
    const mild = cv([6, 5, 5, 4]);
    const strong = cv([10, 5, 3, 2]);
    const collapsed = cv([20, 0, 0, 0]);
    expect(mild).toBeGreaterThan(0);
    expect(strong).toBeGreaterThan(mild);
    expect(collapsed).toBeGreaterThan(strong);
    // CV² of a one-hot load over n experts is n - 1.
    expect(collapsed).toBeCloseTo(3, 4);
  });

  it('of a gate is lower when its routing is balanced', () => {
    const balanced = tf.tidy(() =>
      noisyTopKGate(
        tf.tensor2d([
          [1, 0],
          [0, 1],
          [1, 0],
          [0, 1],
        ]),
        1,
      ).balanceLoss.arraySync(),
    );
    const skewed = tf.tidy(() =>
      noisyTopKGate(
        tf.tensor2d([
          [1, 0],
          [1, 0],
          [1, 0],
          [0, 1],
        ]),
        1,
      ).balanceLoss.arraySync(),
    );
    expect(balanced).toBeCloseTo(0, 5);
    expect(skewed).toBeGreaterThan(balanced + 0.1);
  });
});
