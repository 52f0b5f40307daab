import * as tf from '@tensorflow/tfjs';

import { EncodedDataset } from '../data/preprocessor';
import { selectRows } from '../features/sequence.feature';
import { disposeSequenceBatch, sequenceBatch } from '../features/sequence.pooling';
import { sampleSpaceTasks } from '../model-spec/task-space.rules';
import { BatchInputs, MultiTaskNetwork } from './network';

export interface TrainingBatch {
  inputs: BatchInputs;
  /** [batch, tasks] standardised targets, 0 where missing. */
  labels: tf.Tensor2D;
  /**
   * [batch, tasks] the example's sample weight where the label is present and the row in the task's sampleSpace (1
   * unweighted), else 0.
   */
  mask: tf.Tensor2D;
}

/**
 * Copies selected rows of an encoded dataset into reusable buffers (embedding ids interleaved per table, offsets
 * added) and makes tensors of them.
 */
export class BatchBuilder {
  private readonly numeric: Float32Array;
  private readonly ids: Int32Array[];
  private readonly labels: Float32Array;
  private readonly mask: Float32Array;
  /** Per sequence feature with attention pooling, its batch rows' targets when the rows are shuffled. */
  private readonly targets: (Int32Array | undefined)[];
  /** Per task, the task whose positives are its sample space, or -1. */
  private readonly spaces: number[];

  constructor(
    private readonly net: MultiTaskNetwork,
    private readonly data: EncodedDataset,
    readonly capacity: number,
  ) {
    const tasks = net.preprocessing.labels.length;
    this.numeric = new Float32Array(capacity * data.numericWidth);
    this.ids = net.embeddings.allocateIds(capacity);
    this.labels = new Float32Array(capacity * tasks);
    this.mask = new Float32Array(capacity * tasks);
    this.spaces = sampleSpaceTasks(net.spec.tasks);
    this.targets = net.sequenceSources.map((s) => (s.attention ? new Int32Array(capacity) : undefined));
  }

  /** Whether row `row` counts for task t: it has a label and lies in the task's sample space. */
  private labelled(t: number, row: number): boolean {
    const space = this.spaces[t];
    return !Number.isNaN(this.data.labels[t][row]) && (space < 0 || this.data.labels[space][row] === 1);
  }

  /** Rows start..end of `order` (of the dataset's own order without one); tensors are owned by the caller. */
  inputs(start: number, end: number, order?: Uint32Array): BatchInputs {
    const size = end - start;
    const width = this.data.numericWidth;
    const { embeddings } = this.net;
    for (let i = 0; i < size; i++) {
      const row = order ? order[start + i] : start + i;
      if (width > 0 && order) this.numeric.set(this.data.numeric.subarray(row * width, (row + 1) * width), i * width);
      embeddings.writeRow(this.data, row, i, this.ids);
    }
    // Contiguous rows need no staging copy of the numerics.
    const numeric = order
      ? this.numeric.subarray(0, size * width)
      : this.data.numeric.subarray(start * width, end * width);
    return {
      size,
      numeric: width > 0 ? tf.tensor2d(numeric, [size, width]) : undefined,
      categorical: embeddings.idTensors(this.ids, size),
      sequences: this.data.sequences.map((column, j) => {
        const { offset, pooling, attention } = this.net.sequenceSources[j];
        const targets = attention && this.data.categorical[attention.target];
        // Shuffled rows' values are made contiguous (maxLength already applied: no row grows).
        if (!order) return sequenceBatch(column, start, end, pooling, offset, targets?.subarray(start, end));
        const rows = order.subarray(start, end);
        const shuffledTargets = targets && this.targets[j]!;
        if (shuffledTargets) for (let i = 0; i < size; i++) shuffledTargets[i] = targets![rows[i]];
        return sequenceBatch(selectRows(column, Infinity, rows, size), 0, size, pooling, offset, shuffledTargets);
      }),
    };
  }

  /**
   * Per task, the weight of the rows start..end of `order` that have a label (their count unweighted): a whole
   * batch's, for its shards' loss.
   */
  labelledCounts(start: number, end: number, order: Uint32Array): Float32Array {
    const counts = new Float32Array(this.data.labels.length);
    const { weights } = this.data;
    for (let i = start; i < end; i++) {
      const row = order[i];
      const w = weights ? weights[row] : 1;
      for (let t = 0; t < counts.length; t++) if (this.labelled(t, row)) counts[t] += w;
    }
    return counts;
  }

  training(start: number, end: number, order: Uint32Array): TrainingBatch {
    const size = end - start;
    const labelStates = this.net.preprocessing.labels;
    const tasks = labelStates.length;
    const { weights } = this.data;
    for (let i = 0; i < size; i++) {
      const row = order[start + i];
      const w = weights ? weights[row] : 1;
      for (let t = 0; t < tasks; t++) {
        const y = this.data.labels[t][row];
        const present = this.labelled(t, row);
        const { mean, std } = labelStates[t];
        this.labels[i * tasks + t] = present ? (y - mean) / std : 0;
        this.mask[i * tasks + t] = present ? w : 0;
      }
    }
    return {
      inputs: this.inputs(start, end, order),
      labels: tf.tensor2d(this.labels.subarray(0, size * tasks), [size, tasks]),
      mask: tf.tensor2d(this.mask.subarray(0, size * tasks), [size, tasks]),
    };
  }
}

export function disposeBatch(batch: BatchInputs | TrainingBatch): void {
  const inputs = 'inputs' in batch ? batch.inputs : batch;
  inputs.numeric?.dispose();
  inputs.categorical.forEach((c) => c.dispose());
  inputs.sequences.forEach(disposeSequenceBatch);
  if ('inputs' in batch) tf.dispose([batch.labels, batch.mask]);
}
