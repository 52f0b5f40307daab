import { SpecValidationError } from '../model-spec/model-spec';
import { DEFAULT_EMBEDDING_DIM, type ModelSpec } from '../model-spec/model-spec.schema';
import { relationLayers, topologyOf } from '../model/topology';

/**
 * The activations one training batch may hold on the wasm (and cpu) backends, rows × floats per row as
 * batchActivationsPerRow estimates them: wasm's memory is 4 GB, and a step keeps several copies of them (forward,
 * gradients, temporaries). Measured with 8 experts [1024]: a batch of 8,192 rows (67 M) trains, 16,384 (134 M) fails
 * with "memory access out of bounds", after which the process's wasm module is unusable (a worker spun in it).
 */
export const MAX_BATCH_ACTIVATIONS = 100_000_000;

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/**
 * The floats one example's training pass holds, roughly: its input row (a sequence as all its values' embeddings, and
 * attention's hidden units for each; `valuesPerRow` of a sequence, its maxLength when not known: a batch embeds the
 * values its rows hold), every expert's and tower's layers, the gates. What is refused is far beyond any
 * recommender's batch, so the estimate need not be exact.
 */
export function batchActivationsPerRow(spec: ModelSpec, valuesPerRow: ReadonlyMap<string, number> = new Map()): number {
  const tableWidth = (name: string | undefined) => {
    const f = spec.features.find((g) => g.name === name);
    return f && f.type !== 'numeric' ? (f.embeddingDim ?? DEFAULT_EMBEDDING_DIM) : DEFAULT_EMBEDDING_DIM;
  };
  const input = sum(
    spec.features.map((f) => {
      if (f.type === 'categorical') return f.embeddingDim;
      if (f.type === 'numeric') return f.buckets ? (f.embeddingDim ?? DEFAULT_EMBEDDING_DIM) : 1;
      const width = f.embeddingDim ?? tableWidth(f.sharedEmbedding ?? f.target);
      const attention = f.pooling === 'attention' ? sum(f.attentionUnits ?? []) : 0;
      return (valuesPerRow.get(f.name) ?? f.maxLength) * (width + attention);
    }),
  );
  // Every architecture's experts, gates and towers as the networks build them (topology.ts).
  const topology = topologyOf(spec);
  const experts = topology.experts.length * sum(topology.expertUnits);
  const gates = sum(topology.gates.map((g) => g.experts.length));
  const towers = sum(
    topology.towers.map(
      ({ related }, t) =>
        sum(spec.model.towerUnits) + (related.length > 0 ? sum(relationLayers(spec, topology, t).slice(1)) : 0),
    ),
  );
  return input + experts + gates + towers;
}

/** What one replica of a training holds per step: its share of a batch, and its sequences' values per row. */
export interface StepLoad {
  backend: string;
  /** Rows of a batch one replica (one wasm memory) passes: the whole batch on one thread, a shard on several. */
  rows: number;
  valuesPerRow?: ReadonlyMap<string, number>;
}

/**
 * Refuses, before a step allocates it, a batch too large for the backend's memory, naming training.batchSize. Only
 * on wasm and cpu: the native backends' memory is the machine's (or the GPU's), which a spec cannot know.
 */
export function checkBatchActivations(spec: ModelSpec, { backend, rows, valuesPerRow }: StepLoad): void {
  if (backend !== 'wasm' && backend !== 'cpu') return;
  const perRow = batchActivationsPerRow(spec, valuesPerRow);
  const { batchSize } = spec.training;
  if (rows * perRow <= MAX_BATCH_ACTIVATIONS) return;
  const count = (n: number) => Math.round(n).toLocaleString('en-US');
  throw new SpecValidationError([
    {
      path: 'training.batchSize',
      message:
        `a batch of ${count(batchSize)} rows would hold about ${count(rows * perRow)} activations ` +
        `(${count(perRow)} per row${rows < batchSize ? `, ${count(rows)} rows per thread` : ''}), more than the ` +
        `${count(MAX_BATCH_ACTIVATIONS)} a training step has memory for on ${backend}: lower batchSize, or the ` +
        'widest layers, experts or sequences',
    },
  ]);
}
