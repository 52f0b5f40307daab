import { initBackend } from '../backend/backend';
import { FeatureEncoder, fitPreprocessing } from '../data/preprocessor';
import { RawTable } from '../data/raw-table';
import { parseModelSpec } from '../model-spec/model-spec';
import { BatchBuilder, disposeBatch } from '../model/batch';
import { AdamState, MultiTaskNetwork } from '../model/network';
import { Rng } from '../util/random';
import { trainNetwork } from './trainer';
import { createSplitTrainingStep } from './training-step';

beforeAll(() => initBackend('wasm'));

/**
 * Every layout the public weights map from: embeddings of two widths stacked per dimension, a sequence sharing the
 * item table, single-layer experts run as one wide layer, towers.
 */
const spec = parseModelSpec({
  features: [
    { name: 'item', type: 'categorical', embeddingDim: 4 },
    { name: 'user', type: 'categorical', embeddingDim: 8 },
    { name: 'country', type: 'categorical', embeddingDim: 4 },
    { name: 'history', type: 'sequence', sharedEmbedding: 'item' },
    { name: 'x', type: 'numeric' },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'like', label: 'like', type: 'binary' },
  ],
  model: { experts: 3, expertUnits: [8], towerUnits: [4] },
  training: { epochs: 4, batchSize: 64, learningRate: 0.01, seed: 2, earlyStoppingPatience: 0 },
});

function dataset(rows: number, seed: number) {
  const rng = new Rng(seed);
  const table = new RawTable(spec);
  for (let r = 0; r < rows; r++) {
    const item = rng.int(12);
    table.add({
      item: `i${item}`,
      user: `u${rng.int(30)}`,
      country: `c${rng.int(4)}`,
      history: [`i${rng.int(12)}`, `i${rng.int(12)}`],
      x: rng.gaussian(),
      click: rng.next() < (item % 2 ? 0.7 : 0.3) ? 1 : 0,
      like: rng.next() < (item % 3 ? 0.4 : 0.1) ? 1 : 0,
    });
  }
  return table;
}

describe('Adam state through a training step', () => {
  const table = dataset(400, 1);
  const preprocessing = fitPreprocessing(spec, table);
  const data = new FeatureEncoder(preprocessing).encodeTable(table);
  const order = Uint32Array.from({ length: data.size }, (_, i) => i);

  /** Batches `first` to `first + steps` from `net`'s weights and Adam's state `from`; returns the state after them. */
  function train(net: MultiTaskNetwork, first: number, steps: number, from?: AdamState): AdamState {
    const step = createSplitTrainingStep(net, from);
    const builder = new BatchBuilder(net, data, 64);
    const rng = new Rng(9); // nothing in this spec draws from it (no gate noise, no dropout)
    for (let s = first; s < first + steps; s++) {
      const batch = builder.training(s * 64, (s + 1) * 64, order);
      step.run(batch, rng).dispose();
      disposeBatch(batch);
    }
    const state = step.optimizerState()!;
    step.dispose();
    return state;
  }
  it('goes on through the public layout as if it had never stopped', () => {
    const [uninterrupted, split, restarted] = [0, 1, 2].map(() => new MultiTaskNetwork(spec, preprocessing));
    try {
      const end = train(uninterrupted, 0, 6);
      const continued = train(split, 3, 3, train(split, 0, 3));
      expect(continued.step).toBe(6);
      const weights = split.snapshot();
      for (const [name, values] of uninterrupted.snapshot()) expect(weights.get(name)).toEqual(values);
      for (const [name, values] of end.first) expect(continued.first.get(name)).toEqual(values);
      for (const [name, values] of end.second) expect(continued.second.get(name)).toEqual(values);
      // Restarting Adam halfway lands elsewhere.
      train(restarted, 0, 3);
      train(restarted, 3, 3);
      expect([...restarted.snapshot().values()]).not.toEqual([...uninterrupted.snapshot().values()]);
    } finally {
      [uninterrupted, split, restarted].forEach((n) => n.dispose());
    }
  });

  it("keeps the best epoch's state with the best epoch's weights, and only when asked", async () => {
    // A learning rate too large for the data: the validation AUC peaks before the last epoch.
    const noisy = parseModelSpec({ ...spec, training: { ...spec.training, learningRate: 0.3 } });
    const valid = new FeatureEncoder(preprocessing).encodeTable(dataset(200, 2));
    const [kept, unkept, shorter] = [0, 1, 2].map(() => new MultiTaskNetwork(noisy, preprocessing));
    try {
      const { summary } = await trainNetwork(kept, data, valid, { threads: 1, keepOptimizer: true });
      expect(summary.bestEpoch).toBeLessThan(summary.epochsRun);
      expect(kept.optimizerState!.step).toBe(summary.bestEpoch * Math.ceil(data.size / 64));
      // The same run stopped at its best epoch: the same moments, bit for bit (a copy, not Adam's arrays run on).
      await trainNetwork(shorter, data, valid, { threads: 1, keepOptimizer: true, epochs: summary.bestEpoch });
      for (const moments of ['first', 'second'] as const)
        for (const [name, values] of shorter.optimizerState![moments])
          expect(kept.optimizerState![moments].get(name)).toEqual(values);
      await trainNetwork(unkept, data, valid, { threads: 1 });
      expect(unkept.optimizerState).toBeUndefined();
    } finally {
      [kept, unkept, shorter].forEach((n) => n.dispose());
    }
  });
});
