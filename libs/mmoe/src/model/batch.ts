import * as tf from '@tensorflow/tfjs';

import { EncodedDataset, LabelState } from '../data/preprocessor';
import { BatchInputs } from './network';

export interface TrainingBatch {
  inputs: BatchInputs;
  /** [batch, tasks] standardised targets, 0 where missing. */
  labels: tf.Tensor2D;
  /** [batch, tasks] 1 where the label is present. */
  mask: tf.Tensor2D;
}

/** Copies selected rows of an encoded dataset into reusable buffers and makes tensors of them. */
export class BatchBuilder {
  private readonly numeric: Float32Array;
  private readonly categorical: Int32Array[];
  private readonly labels: Float32Array;
  private readonly mask: Float32Array;

  constructor(
    private readonly data: EncodedDataset,
    private readonly labelStates: LabelState[],
    readonly capacity: number,
  ) {
    this.numeric = new Float32Array(capacity * data.numericWidth);
    this.categorical = data.categorical.map(() => new Int32Array(capacity));
    this.labels = new Float32Array(capacity * labelStates.length);
    this.mask = new Float32Array(capacity * labelStates.length);
  }

  /** Rows start..end of `order`, gathered into the staging buffers; tensors are owned by the caller. */
  inputs(start: number, end: number, order: Uint32Array): BatchInputs {
    const size = end - start;
    const width = this.data.numericWidth;
    for (let i = 0; i < size; i++) {
      const row = order[start + i];
      if (width > 0) this.numeric.set(this.data.numeric.subarray(row * width, (row + 1) * width), i * width);
      for (let j = 0; j < this.categorical.length; j++) this.categorical[j][i] = this.data.categorical[j][row];
    }
    return {
      numeric: width > 0 ? tf.tensor2d(this.numeric.subarray(0, size * width), [size, width]) : undefined,
      categorical: this.categorical.map((c) => tf.tensor1d(c.subarray(0, size), 'int32')),
    };
  }

  training(start: number, end: number, order: Uint32Array): TrainingBatch {
    const size = end - start;
    const tasks = this.labelStates.length;
    for (let i = 0; i < size; i++) {
      const row = order[start + i];
      for (let t = 0; t < tasks; t++) {
        const y = this.data.labels[t][row];
        const present = !Number.isNaN(y);
        const { mean, std } = this.labelStates[t];
        this.labels[i * tasks + t] = present ? (y - mean) / std : 0;
        this.mask[i * tasks + t] = present ? 1 : 0;
      }
    }
    return {
      inputs: this.inputs(start, end, order),
      labels: tf.tensor2d(this.labels.subarray(0, size * tasks), [size, tasks]),
      mask: tf.tensor2d(this.mask.subarray(0, size * tasks), [size, tasks]),
    };
  }
}

/** Contiguous rows start..end as tensors copied straight from the dataset (no staging buffer); owned by the caller. */
export function sliceInputs(data: EncodedDataset, start: number, end: number): BatchInputs {
  const width = data.numericWidth;
  return {
    numeric:
      width > 0 ? tf.tensor2d(data.numeric.subarray(start * width, end * width), [end - start, width]) : undefined,
    categorical: data.categorical.map((c) => tf.tensor1d(c.subarray(start, end), 'int32')),
  };
}

export function disposeBatch(batch: BatchInputs | TrainingBatch): void {
  const inputs = 'inputs' in batch ? batch.inputs : batch;
  inputs.numeric?.dispose();
  inputs.categorical.forEach((c) => c.dispose());
  if ('inputs' in batch) tf.dispose([batch.labels, batch.mask]);
}
