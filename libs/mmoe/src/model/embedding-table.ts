import * as tf from '@tensorflow/tfjs';

import { CategoricalFeatureState, embeddingRows, EncodedDataset } from '../data/preprocessor';

/** Where one feature's rows live in its table. */
export interface EmbeddingSlot {
  feature: string;
  /** Index of the feature in preprocessing order (its column in EncodedDataset.categorical). */
  column: number;
  table: number;
  /** First row of the feature in its table: a batch's ids are the feature's own ids plus this. */
  offset: number;
  rows: number;
}

export interface EmbeddingTableLayout {
  dim: number;
  rows: number;
  /** Features of this table, in preprocessing order. */
  slots: EmbeddingSlot[];
}

/**
 * All categorical embeddings of one dimension stacked into one table, so that a batch costs one gather forward and
 * one scatter-add backward per dimension instead of one of each per feature (each op costs tens of µs of dispatch on
 * wasm, which is most of a small model's step).
 *
 * The network's input row is then [table 0 | table 1 | … | numerics]: grouping by dimension reorders the columns
 * only when dimensions are interleaved in the spec. `inputColumns` maps the network's columns to the spec order
 * (the order of the artifact and the ONNX export), so that the public weights keep their layout.
 */
export class EmbeddingTables {
  readonly tables: EmbeddingTableLayout[] = [];
  readonly slots: EmbeddingSlot[];
  /** Width of the embedding part of the input row. */
  readonly width: number;

  constructor(categorical: CategoricalFeatureState[]) {
    const byDim = new Map<number, EmbeddingTableLayout>();
    this.slots = categorical.map((c, column) => {
      let table = byDim.get(c.embeddingDim);
      if (!table) {
        table = { dim: c.embeddingDim, rows: 0, slots: [] };
        byDim.set(c.embeddingDim, table);
        this.tables.push(table);
      }
      const slot = {
        feature: c.name,
        column,
        table: this.tables.indexOf(table),
        offset: table.rows,
        rows: embeddingRows(c),
      };
      table.rows += slot.rows;
      table.slots.push(slot);
      return slot;
    });
    this.width = categorical.reduce((s, c) => s + c.embeddingDim, 0);
  }

  /**
   * For each column of the network's embedding block, the column of the same value in spec order, or undefined when
   * the two orders agree (dimensions not interleaved).
   */
  inputColumns(): Int32Array | undefined {
    const specStart: number[] = [];
    let start = 0;
    this.slots.forEach((s) => {
      specStart[s.column] = start;
      start += this.tables[s.table].dim;
    });
    const order = new Int32Array(this.width);
    let i = 0;
    for (const table of this.tables) {
      for (const s of table.slots) for (let d = 0; d < table.dim; d++) order[i++] = specStart[s.column] + d;
    }
    return order.every((c, j) => c === j) ? undefined : order;
  }

  /** One id buffer per table for `capacity` rows: row-major [rows, features of the table], offsets added. */
  allocateIds(capacity: number): Int32Array[] {
    return this.tables.map((t) => new Int32Array(capacity * t.slots.length));
  }

  /** Writes batch row `i` (dataset row `row`) into the id buffers. */
  writeRow(data: EncodedDataset, row: number, i: number, ids: Int32Array[]): void {
    for (let t = 0; t < this.tables.length; t++) {
      const { slots } = this.tables[t];
      const out = ids[t];
      const base = i * slots.length;
      for (let j = 0; j < slots.length; j++) out[base + j] = data.categorical[slots[j].column][row] + slots[j].offset;
    }
  }

  idTensors(ids: Int32Array[], size: number): tf.Tensor1D[] {
    return this.tables.map((t, i) => tf.tensor1d(ids[i].subarray(0, size * t.slots.length), 'int32'));
  }

  /** [batch, features × dim] per table; call inside tf.tidy or a gradient function. */
  lookup(tables: tf.Tensor2D[], ids: tf.Tensor1D[], batch: number): tf.Tensor2D[] {
    return this.tables.map((t, i) => embeddingLookup(tables[i], ids[i], batch, t.slots.length * t.dim));
  }
}

/**
 * gather + reshape with a direct scatter-add gradient: tfjs's own gradient of gather wraps the segment sum in
 * reshapes and two transposes, five kernels where two do. The ids are closed over, not inputs: they have no gradient.
 */
function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D, batch: number, width: number): tf.Tensor2D {
  const [rows, dim] = table.shape;
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.reshape(tf.gather(args[0] as tf.Tensor2D, ids), [batch, width]),
    gradFunc: (dy: tf.Tensor) => tf.unsortedSegmentSum(tf.reshape(dy, [-1, dim]), ids, rows),
  }));
  return lookup(table) as tf.Tensor2D;
}
