import * as tf from '@tensorflow/tfjs';

import { Pooling } from '../model-spec/model-spec.schema';
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
}

/**
 * Tensors for rows start..end of a column, ids shifted by `offset` (their first row in a shared table; without one
 * the ids are a view, not a copy); owned by the caller.
 */
export function sequenceBatch(
  column: SequenceColumn,
  start: number,
  end: number,
  pooling: Pooling,
  offset = 0,
): SequenceBatch {
  const rows = end - start;
  const first = column.offsets[start];
  const values = column.offsets[end] - first;
  const segments = new Int32Array(values);
  const scale = pooling === 'mean' ? new Float32Array(values) : undefined;
  for (let i = 0; i < rows; i++) {
    const from = column.offsets[start + i] - first;
    const to = column.offsets[start + i + 1] - first;
    segments.fill(i, from, to);
    scale?.fill(1 / (to - from), from, to);
  }
  return {
    rows,
    ids: tf.tensor1d(shifted(column.ids.subarray(first, first + values), offset), 'int32'),
    segments: tf.tensor1d(segments, 'int32'),
    scale: scale && tf.tensor2d(scale, [values, 1]),
  };
}

function shifted(ids: Int32Array, offset: number): Int32Array {
  if (offset === 0) return ids;
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i] + offset;
  return out;
}

export function disposeSequenceBatch(batch: SequenceBatch): void {
  tf.dispose([batch.ids, batch.segments, ...(batch.scale ? [batch.scale] : [])]);
}

/** [rows, embeddingDim]: one gather, then one segment reduction; an empty row pools to zeros. */
export function poolSequence(table: tf.Tensor2D, batch: SequenceBatch, pooling: Pooling): tf.Tensor2D {
  const gathered = tf.gather(table, batch.ids) as tf.Tensor2D;
  if (pooling === 'max') return segmentMax(batch.rows)(gathered, batch.segments) as tf.Tensor2D;
  const weighted = batch.scale ? tf.mul(gathered, batch.scale) : gathered;
  return tf.unsortedSegmentSum(weighted, batch.segments, batch.rows) as tf.Tensor2D;
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
