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

describe('checkBatchActivations', () => {
  it('refuses on wasm and cpu a batch past the measured failure, naming batchSize, and lets the one that trained by', () => {
    expect(() => checkBatchActivations(wide(8192), 'wasm')).not.toThrow();
    for (const backend of ['wasm', 'cpu'])
      expect(() => checkBatchActivations(wide(16_384), backend)).toThrow(
        /training\.batchSize: a batch of 16,384 rows would hold about 134,\d{3},\d{3} activations \(8,\d{3} per row\)/,
      );
    // The native backends' memory is the machine's or the GPU's.
    expect(() => checkBatchActivations(wide(16_384), 'tensorflow')).not.toThrow();
  });

  it("counts a sequence's every value, and attention's units for each", () => {
    const mean = { name: 'history', type: 'sequence', maxLength: 1024, sharedEmbedding: 'item' };
    const base = batchActivationsPerRow(wide(512));
    expect(batchActivationsPerRow(wide(512, [mean]))).toBe(base + 1024 * 8);
    const attention = { ...mean, pooling: 'attention', target: 'item', attentionUnits: [4096] };
    expect(batchActivationsPerRow(wide(512, [attention]))).toBe(base + 1024 * (8 + 4096));
    expect(() => checkBatchActivations(wide(512, [attention]), 'wasm')).toThrow(SpecValidationError);
  });

  it('stops a training before it allocates a step', async () => {
    const table = new RawTable(wide(16_384));
    for (let i = 0; i < 20; i++) table.add({ age: i, item: `i${i % 3}`, click: i % 2, like: (i >> 1) % 2 });
    await expect(MultiTaskModel.train(wide(16_384), table)).rejects.toThrow(SpecValidationError);
  });
});
