import * as tf from '@tensorflow/tfjs';

import { Pooling } from '../model-spec/model-spec.schema';
import { dense } from '../model/dense.layer';
import { SequenceColumn } from './sequence.feature';

/**
 * Pooling of sequence features in the tfjs network: one gather over every value of the batch, then one segment
 * reduction. No op per row: on wasm each op costs its dispatch (tens of µs), which per row would dominate a batch.
 */

/** One batch of one sequence feature as tensors; see poolSequence. */
export interface SequenceBatch {
  rows: number;
  /** [values] embedding rows of every value of the batch, row after row. */
  ids: tf.Tensor1D;
  /** [values] the batch row each value belongs to. */
  segments: tf.Tensor1D;
  /** mean pooling: [values, 1] 1 / length of the value's row. */
  scale?: tf.Tensor2D;
  /** attention pooling: [values] the embedding row of the value's row's target (in the same table as `ids`). */
  targets?: tf.Tensor1D;
}

/**
 * Tensors for rows start..end of a column, ids shifted by `offset` (their first row in a shared table; without one
 * the ids are a view, not a copy); owned by the caller. Attention pooling needs `targets`: row i's target (its own
 * row in the table, before `offset`) at targets[i].
 */
export function sequenceBatch(
  column: SequenceColumn,
  start: number,
  end: number,
  pooling: Pooling,
  offset = 0,
  targets?: ArrayLike<number>,
): SequenceBatch {
  const rows = end - start;
  const first = column.offsets[start];
  const values = column.offsets[end] - first;
  const segments = new Int32Array(values);
  const scale = pooling === 'mean' ? new Float32Array(values) : undefined;
  const valueTargets = pooling === 'attention' ? new Int32Array(values) : undefined;
  if (valueTargets && !targets) throw new Error("attention pooling needs the rows' targets");
  for (let i = 0; i < rows; i++) {
    const from = column.offsets[start + i] - first;
    const to = column.offsets[start + i + 1] - first;
    segments.fill(i, from, to);
    scale?.fill(1 / (to - from), from, to);
    valueTargets?.fill(targets![i] + offset, from, to);
  }
  return {
    rows,
    ids: tf.tensor1d(shifted(column.ids.subarray(first, first + values), offset), 'int32'),
    segments: tf.tensor1d(segments, 'int32'),
    scale: scale && tf.tensor2d(scale, [values, 1]),
    targets: valueTargets && tf.tensor1d(valueTargets, 'int32'),
  };
}

function shifted(ids: Int32Array, offset: number): Int32Array {
  if (offset === 0) return ids;
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i] + offset;
  return out;
}

export function disposeSequenceBatch(batch: SequenceBatch): void {
  tf.dispose([
    batch.ids,
    batch.segments,
    ...(batch.scale ? [batch.scale] : []),
    ...(batch.targets ? [batch.targets] : []),
  ]);
}

/** [rows, embeddingDim]: one gather, then one segment reduction; an empty row pools to zeros. */
export function poolSequence(table: tf.Tensor2D, batch: SequenceBatch, pooling: Pooling): tf.Tensor2D {
  const gathered = tf.gather(table, batch.ids) as tf.Tensor2D;
  if (pooling === 'max') return segmentMax(batch.rows)(gathered, batch.segments) as tf.Tensor2D;
  const weighted = batch.scale ? tf.mul(gathered, batch.scale) : gathered;
  return tf.unsortedSegmentSum(weighted, batch.segments, batch.rows) as tf.Tensor2D;
}

/** A dense layer's weights: [inputs, units] and [units]. */
export interface DenseWeights {
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
}

/**
 * Target attention (DIN, Zhou et al. KDD 2018), batched like the other poolings: one gather of the values and one of
 * their rows' targets, the attention unit over [e, t, e ⊙ t] for every value of the batch at once (hidden layers
 * ReLU, the last linear), then the segment sum of the values scaled by their weights. The weights are not normalised
 * (no softmax), as in DIN: the pooled vector's size then says how much of the list is relevant to this target, not
 * only which part. [rows, embeddingDim]; an empty row pools to zeros.
 */
export function attentionPool(table: tf.Tensor2D, batch: SequenceBatch, unit: DenseWeights[]): tf.Tensor2D {
  const elements = tf.gather(table, batch.ids) as tf.Tensor2D;
  const targets = tf.gather(table, batch.targets!) as tf.Tensor2D;
  let h = tf.concat([elements, targets, tf.mul(elements, targets)], 1) as tf.Tensor2D;
  unit.forEach(({ kernel, bias }, l) => (h = dense(h, kernel, bias, l < unit.length - 1)));
  return tf.unsortedSegmentSum(tf.mul(elements, h), batch.segments, batch.rows) as tf.Tensor2D;
}

/**
 * Segment max with its gradient, in JavaScript: tfjs has no segment max, and the padded alternative gathers and
 * reduces maxLength rows for every row, mostly padding. The gradient routes dy to the value that was the maximum.
 */
function segmentMax(rows: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, segmentIds] = args as [tf.Tensor2D, tf.Tensor1D];
    const [values, width] = x.shape;
    const data = x.dataSync();
    const segments = segmentIds.dataSync();
    const out = new Float32Array(rows * width).fill(-Infinity);
    const argmax = new Int32Array(rows * width).fill(-1);
    for (let v = 0; v < values; v++) {
      const base = segments[v] * width;
      for (let d = 0; d < width; d++) {
        if (data[v * width + d] > out[base + d]) {
          out[base + d] = data[v * width + d];
          argmax[base + d] = v;
        }
      }
    }
    for (let k = 0; k < out.length; k++) if (argmax[k] < 0) out[k] = 0;
    return {
      value: tf.tensor2d(out, [rows, width]),
      gradFunc: (dy: tf.Tensor) => {
        const upstream = dy.dataSync();
        const dx = new Float32Array(values * width);
        for (let k = 0; k < argmax.length; k++) if (argmax[k] >= 0) dx[argmax[k] * width + (k % width)] = upstream[k];
        return [tf.tensor2d(dx, [values, width]), tf.zerosLike(segmentIds)];
      },
    };
  });
}
