/** Each replica's shard of a batch is at least this many rows: smaller ones cost more in dispatch than they save. */
export const MIN_SHARD_ROWS = 32;
/**
 * Below this many training rows the default is one thread: starting a thread (its own tfjs and wasm) takes about a
 * second, more than a small job's whole training.
 */
export const MIN_PARALLEL_ROWS = 8192;
/**
 * Below this many parameters the default is one thread too. A replica runs every kernel of a step whatever its share
 * of the rows, and a small model's step is dispatch, not arithmetic: `bench:model` (AMD EPYC, wasm) measured the
 * census shape (24 k parameters) at 28,298 ex/s on one thread and 28,060 on two (18.1 / 18.2 ms per step), one Adult
 * epoch 0.74× as fast on two, while the reference shape (707 k) gains 1.2× (3,300 → 3,954 ex/s).
 */
export const MIN_PARALLEL_PARAMETERS = 100_000;

export interface ReplicaInputs {
  /** training.threads or an override; undefined means every available core. */
  requested: number | undefined;
  available: number;
  backend: string;
  trainRows: number;
  batchSize: number;
  parameters: number;
}

/**
 * How many data-parallel replicas (threads) train a model, at most one per core. Only on wasm: the native `tensorflow`
 * backend runs one process per device and threads its own kernels, and the cpu backend is too slow for threads to
 * matter.
 */
export function replicaCount({
  requested,
  available,
  backend,
  trainRows,
  batchSize,
  parameters,
}: ReplicaInputs): number {
  if (backend !== 'wasm') return 1;
  if (requested === undefined && (trainRows < MIN_PARALLEL_ROWS || parameters < MIN_PARALLEL_PARAMETERS)) return 1;
  // Never more than the cores, whatever is asked: each replica is a thread with its own tfjs and wasm memory (about
  // 100 MB for a small model), and more threads than cores only take turns; 256 of them exhausted the machine's memory.
  const wanted = Math.min(requested ?? available, available);
  return Math.max(1, Math.min(wanted, Math.floor(batchSize / MIN_SHARD_ROWS), trainRows));
}

/** Rows [start, end) of replica `replica`'s shard of the batch rows [batchStart, batchEnd): contiguous, sizes ±1. */
export function shardOf(batchStart: number, batchEnd: number, replicas: number, replica: number): [number, number] {
  const size = batchEnd - batchStart;
  return [
    batchStart + Math.floor((replica * size) / replicas),
    batchStart + Math.floor(((replica + 1) * size) / replicas),
  ];
}
