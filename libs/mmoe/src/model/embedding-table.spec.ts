import * as tf from '@tensorflow/tfjs';

import '@tensorflow/tfjs-backend-wasm';

import { registerScatterAddKernel } from '../backend/scatter-add.kernel';
import { EncodedDataset } from '../data/preprocessor';
import { EmbeddingTables } from './embedding-table';

const features = [
  { name: 'a', embeddingDim: 2, vocab: ['x', 'y'] }, // 3 rows
  { name: 'b', embeddingDim: 3, hashBuckets: 4 }, // 5 rows
  { name: 'c', embeddingDim: 2, vocab: ['x'] }, // 2 rows
];

describe('EmbeddingTables', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    registerScatterAddKernel('wasm');
  });

  it('stacks the features of one dimension into one table with offsets', () => {
    const layout = new EmbeddingTables(features);
    expect(layout.tables.map((t) => [t.dim, t.rows, t.slots.map((s) => [s.feature, s.offset])])).toEqual([
      [
        2,
        5,
        [
          ['a', 0],
          ['c', 3],
        ],
      ],
      [3, 5, [['b', 0]]],
    ]);
    expect(layout.width).toBe(7);
    // Network columns [a0 a1 c0 c1 | b0 b1 b2] hold spec columns [a0 a1 | b0 b1 b2 | c0 c1].
    expect([...layout.inputColumns()!]).toEqual([0, 1, 5, 6, 2, 3, 4]);
    expect(new EmbeddingTables([features[0], features[2]]).inputColumns()).toBeUndefined();
  });

  it('looks up a batch with one gather per table and has the per-feature gradient', () => {
    const layout = new EmbeddingTables([features[0], features[2]]);
    const data: EncodedDataset = {
      size: 2,
      numericWidth: 0,
      numeric: new Float32Array(0),
      categorical: [Int32Array.from([2, 0]), Int32Array.from([1, 1])],
      sequences: [],
      labels: [],
    };
    const ids = layout.allocateIds(2);
    for (let i = 0; i < 2; i++) layout.writeRow(data, i, i, ids);
    expect([...ids[0]]).toEqual([2, 4, 0, 4]);
    const table = tf.variable(tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [5, 2]));
    const idTensors = layout.idTensors(ids, 2);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layout.lookup([table], idTensors, 2)[0], tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]))),
      [table],
    );
    expect(value.dataSync()[0]).toBe(1 * 4 + 2 * 5 + 3 * 8 + 4 * 9 + 5 * 0 + 6 * 1 + 7 * 8 + 8 * 9);
    // Row 4 (c's "x") is used by both examples: its gradient sums theirs.
    expect(grads[table.name].arraySync()).toEqual([
      [5, 6],
      [0, 0],
      [1, 2],
      [0, 0],
      [3 + 7, 4 + 8],
    ]);
    tf.dispose([table, value, ...Object.values(grads), ...idTensors]);
  });
});
