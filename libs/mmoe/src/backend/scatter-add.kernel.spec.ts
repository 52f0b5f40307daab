import * as tf from '@tensorflow/tfjs';

import '@tensorflow/tfjs-backend-wasm';

import { registerScatterAddKernel } from './scatter-add.kernel';

describe.each(['wasm', 'cpu'] as const)('scatter-add kernel (UnsortedSegmentSum on %s)', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    registerScatterAddKernel(backend);
  });

  it('sums rows into their segments, repeated ids included, and drops out-of-range ids', () => {
    const out = tf.tidy(() =>
      tf
        .unsortedSegmentSum(
          tf.tensor2d([
            [1, 2],
            [3, 4],
            [5, 6],
            [7, 8],
          ]),
          tf.tensor1d([2, 0, 2, 9], 'int32'),
          3,
        )
        .arraySync(),
    );
    expect(out).toEqual([
      [3, 4],
      [0, 0],
      [6, 8],
    ]);
  });

  it('makes the gradient of an embedding lookup', () => {
    const table = tf.variable(tf.ones([4, 2]));
    const grad = tf.tidy(() =>
      tf
        .grad((t) => tf.sum(tf.gather(t, tf.tensor1d([1, 3, 1], 'int32'))))(table)
        .arraySync(),
    );
    expect(grad).toEqual([
      [0, 0],
      [2, 2],
      [0, 0],
      [1, 1],
    ]);
    table.dispose();
  });
});
