import { MIN_PARALLEL_PARAMETERS, MIN_PARALLEL_ROWS, replicaCount } from './replicas.rules';

const large = { available: 2, backend: 'wasm', trainRows: 50_000, batchSize: 512, parameters: 700_000 };

describe('replicaCount', () => {
  it('uses every core by default for a large model on a large training set, on wasm only', () => {
    expect(replicaCount({ ...large, requested: undefined })).toBe(2);
    expect(replicaCount({ ...large, requested: undefined, backend: 'cpu' })).toBe(1);
    expect(replicaCount({ ...large, requested: 4, backend: 'tensorflow' })).toBe(1);
  });

  it('defaults to one thread for a small training set or a small model, unless threads are asked for', () => {
    expect(replicaCount({ ...large, requested: undefined, trainRows: MIN_PARALLEL_ROWS - 1 })).toBe(1);
    expect(replicaCount({ ...large, requested: undefined, parameters: MIN_PARALLEL_PARAMETERS - 1 })).toBe(1);
    expect(replicaCount({ ...large, requested: 2, parameters: 24_000 })).toBe(2);
  });

  it('never starts more threads than cores, whatever is asked', () => {
    expect(replicaCount({ ...large, requested: 256 })).toBe(2);
    expect(replicaCount({ ...large, requested: 256, available: 8 })).toBe(8);
  });

  it('keeps every shard at 32 rows or more', () => {
    expect(replicaCount({ ...large, requested: 8, available: 8, batchSize: 64 })).toBe(2);
  });
});
