import { initBackend } from '../backend/backend';
import { RawTable } from '../data/raw-table';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec, SpecValidationError } from '../model-spec/model-spec';
import { batchActivationsPerRow, checkBatchActivations } from './batch-activations.rules';

beforeAll(() => initBackend('wasm'));

/** 8 experts [1024] on one numeric feature: a batch of 8,192 rows trained on wasm, 16,384 failed. */
const wide = (batchSize: number, extra: object[] = []) =>
  parseModelSpec({
    features: [{ name: 'age', type: 'numeric' }, { name: 'item', type: 'categorical' }, ...extra],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'like', label: 'like', type: 'binary' },
    ],
    model: { experts: 8, expertUnits: [1024] },
    training: { epochs: 1, batchSize },
  });
const on = (backend: string, rows: number, valuesPerRow?: Map<string, number>) => ({ backend, rows, valuesPerRow });

describe('checkBatchActivations', () => {
  it('refuses on wasm and cpu a batch past the measured failure, naming batchSize, and lets the one that trained by', () => {
    expect(() => checkBatchActivations(wide(8192), on('wasm', 8192))).not.toThrow();
    for (const backend of ['wasm', 'cpu'])
      expect(() => checkBatchActivations(wide(16_384), on(backend, 16_384))).toThrow(
        /training\.batchSize: a batch of 16,384 rows would hold about 134,\d{3},\d{3} activations \(8,\d{3} per row\)/,
      );
    // The native backends' memory is the machine's or the GPU's.
    expect(() => checkBatchActivations(wide(16_384), on('tensorflow', 16_384))).not.toThrow();
  });

  it("counts one replica's shard of the batch: each thread has a wasm memory of its own", () => {
    expect(() => checkBatchActivations(wide(16_384), on('wasm', 8192))).not.toThrow();
    expect(() => checkBatchActivations(wide(65_536), on('wasm', 32_768))).toThrow(/32,768 rows per thread/);
  });

  it("counts a sequence's values, and attention's units for each: the lists' own lengths when known", () => {
    const history = { name: 'history', type: 'sequence', maxLength: 1024, sharedEmbedding: 'item' };
    const base = batchActivationsPerRow(wide(512));
    expect(batchActivationsPerRow(wide(512, [history]))).toBe(base + 1024 * 8);
    const attention = { ...history, pooling: 'attention', target: 'item', attentionUnits: [4096] };
    expect(batchActivationsPerRow(wide(512, [attention]))).toBe(base + 1024 * (8 + 4096));
    expect(() => checkBatchActivations(wide(512, [attention]), on('wasm', 512))).toThrow(SpecValidationError);
    // Lists of 20 values on average: a batch embeds those, not maxLength each.
    expect(() =>
      checkBatchActivations(wide(512, [attention]), on('wasm', 512, new Map([['history', 20]]))),
    ).not.toThrow();
  });

  it('stops a training before it allocates a step', async () => {
    const table = new RawTable(wide(16_384));
    for (let i = 0; i < 20_000; i++) table.add({ age: i, item: `i${i % 3}`, click: i % 2, like: (i >> 1) % 2 });
    await expect(MultiTaskModel.train(wide(16_384), table, undefined, { threads: 1 })).rejects.toThrow(
      SpecValidationError,
    );
  });
});
