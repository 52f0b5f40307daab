import { initBackend } from '../backend/backend';
import { fitPreprocessing } from '../data/preprocessor';
import { RawTable } from '../data/raw-table';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import { IncompatibleParentError, warmStartDifferences } from '../model-spec/warm-start.rules';
import { Rng } from '../util/random';
import { MultiTaskNetwork } from './network';
import { warmStartNetwork } from './warm-start';

beforeAll(() => initBackend('wasm'));

const specOf = (patch: (s: ModelSpecInput) => void = () => {}) => {
  const input: ModelSpecInput = {
    features: [
      { name: 'item', type: 'categorical', embeddingDim: 4, maxVocab: 12 },
      { name: 'user', type: 'categorical', embeddingDim: 4, hashBuckets: 16 },
      { name: 'history', type: 'sequence', sharedEmbedding: 'item' },
      { name: 'tags', type: 'sequence', embeddingDim: 3 },
      { name: 'x', type: 'numeric' },
    ],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'secs', label: 'secs', type: 'regression' },
    ],
    model: { experts: 2, expertUnits: [8], towerUnits: [4] },
    training: { epochs: 3, batchSize: 64, learningRate: 0.02, seed: 5, earlyStoppingPatience: 0 },
  };
  patch(input);
  return parseModelSpec(input);
};

/** Items i0..i{items-1}; a click is likelier on odd items, so a new item's row has something to learn. */
function rows(spec: ReturnType<typeof specOf>, n: number, items: number, seed: number, offset = 0): RawTable {
  const rng = new Rng(seed);
  const table = new RawTable(spec);
  for (let r = 0; r < n; r++) {
    const item = offset + rng.int(items);
    table.add({
      item: `i${item}`,
      user: `u${rng.int(50)}`,
      history: [`i${rng.int(items)}`],
      tags: [`t${item % 3}`, `t${offset > 0 ? 9 : 0}`],
      x: 10 + rng.gaussian(),
      click: rng.next() < (item % 2 ? 0.8 : 0.2) ? 1 : 0,
      secs: 100 + (item % 2) + rng.gaussian(),
    });
  }
  return table;
}

describe('warm start', () => {
  const spec = specOf();
  let parent: MultiTaskModel;

  beforeAll(async () => {
    parent = (await MultiTaskModel.train(spec, rows(spec, 600, 8, 1), undefined, { keepOptimizer: true })).model;
  });
  afterAll(() => parent.dispose());

  it('grows vocabularies with new rows after the old ones, every parent weight bit-identical before training', () => {
    const { network, growth } = warmStartNetwork(parent.network, spec, rows(spec, 300, 8, 2, 4)); // items i4..i11
    try {
      const item = network.preprocessing.categorical.find((c) => c.name === 'item') as { vocab: string[] };
      const parentItem = parent.network.preprocessing.categorical.find((c) => c.name === 'item') as { vocab: string[] };
      expect(item.vocab.slice(0, 8)).toEqual(parentItem.vocab);
      expect(item.vocab.slice(8).sort()).toEqual(['i10', 'i11', 'i8', 'i9']);
      expect(growth).toEqual([
        { feature: 'item', before: 8, added: 4, overflow: 0 },
        { feature: 'tags', before: 3, added: 1, overflow: 0 },
      ]);

      const before = parent.network.snapshot();
      const after = network.snapshot();
      for (const [name, values] of before) {
        const grown = after.get(name)!;
        expect(Buffer.from(grown.buffer, grown.byteOffset, values.byteLength)).toEqual(Buffer.from(values.buffer));
      }
      // The four new item rows: a fresh network's small random values, not zeros nor copies.
      const fresh = after.get('embedding/item')!.subarray(9 * 4);
      expect(fresh).toHaveLength(16);
      expect(fresh.every((v) => v !== 0 && Math.abs(v) <= 0.05)).toBe(true);
      expect(after.get('embedding/tags')!.length).toBe(5 * 3);
      // Scales are the parent's; hashed and numeric inputs encode as before.
      expect(network.preprocessing.numeric).toEqual(parent.network.preprocessing.numeric);
      expect(network.preprocessing.labels).toEqual(parent.network.preprocessing.labels);
    } finally {
      network.dispose();
    }
  });

  it('keeps every parent id when the table is full: the least frequent new ids stay out of vocabulary', () => {
    const full = specOf((s) => Object.assign(s.features[0], { maxVocab: 10 }));
    const { network, growth } = warmStartNetwork(parent.network, full, rows(full, 400, 8, 3, 4));
    try {
      expect(growth[0]).toEqual({ feature: 'item', before: 8, added: 2, overflow: 2 });
      const vocab = (network.preprocessing.categorical[0] as { vocab: string[] }).vocab;
      expect(vocab).toHaveLength(10);
      expect(vocab.slice(0, 8)).toEqual((parent.network.preprocessing.categorical[0] as { vocab: string[] }).vocab);
    } finally {
      network.dispose();
    }
  });

  it('reports the ids a full table left out in the training summary, beside the growth', async () => {
    const full = specOf((s) => {
      Object.assign(s.features[0], { maxVocab: 10 });
      s.training = { ...s.training, epochs: 1 };
    });
    const { model, summary } = await MultiTaskModel.train(full, rows(full, 400, 8, 3, 4), undefined, { parent });
    model.dispose();
    expect(summary.vocabularyOverflow).toEqual([{ feature: 'item', leftOut: 2 }]);
  });

  it('refuses an incompatible spec at once, naming every difference', () => {
    const other = specOf((s) => {
      s.features[0] = { name: 'item', type: 'categorical', embeddingDim: 8 };
      s.features[4] = { name: 'x', type: 'numeric', transform: 'log1p' };
      s.features.push({ name: 'extra', type: 'numeric' });
      s.tasks[1] = { name: 'secs', label: 'secs', type: 'binary' };
      s.model.experts = 3;
      s.model.towerUnits = [];
    });
    let error: unknown;
    try {
      warmStartNetwork(parent.network, other, rows(spec, 10, 4, 4));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IncompatibleParentError);
    expect((error as IncompatibleParentError).differences).toEqual([
      'features[5]: "extra" is new (the parent has no weights for it)',
      'features[0] "item": embeddingDim is 4 in the parent, 8 here',
      'features[4] "x": transform is unset in the parent, "log1p" here',
      'tasks[1] "secs": type is "regression" in the parent, "binary" here',
      'model.experts is 2 in the parent, 3 here',
      'model.towerUnits is [4] in the parent, [] here',
    ]);
  });

  it('names a change of what a task reads and of learnt task weights', () => {
    const other = specOf((s) => {
      s.tasks[1] = { name: 'secs', label: 'secs', type: 'regression', relatedTasks: ['click'] };
      s.training = { ...s.training, lossBalancing: { method: 'uncertainty' } };
    });
    expect(() => warmStartNetwork(parent.network, other, rows(other, 10, 4, 4))).toThrow(
      new IncompatibleParentError([
        'tasks[1] "secs": relatedTasks is unset in the parent, ["click"] here',
        'training.lossBalancing: uncertainty weighting (learnt task weights) is off in the parent, on here',
      ]),
    );
  });

  it('refuses a maxVocab below the ids the parent learnt, and accepts training-only changes', () => {
    const small = specOf((s) => Object.assign(s.features[0], { maxVocab: 5 }));
    expect(() => warmStartNetwork(parent.network, small, rows(small, 10, 4, 4))).toThrow(
      'features[0] "item": maxVocab 5 is below the 8 ids the parent learnt',
    );
    const retuned = specOf((s) => {
      s.training = { ...s.training, epochs: 1, learningRate: 0.001 };
      s.tasks[0].weight = 2;
      Object.assign(s.features[3], { maxLength: 3 });
    });
    warmStartNetwork(parent.network, retuned, rows(retuned, 10, 4, 4)).network.dispose();
  });

  it('compares what the weights are: a default spelt out, or a key the architecture does not read, is no difference', () => {
    const same = (parentPatch: (s: ModelSpecInput) => void, childPatch: (s: ModelSpecInput) => void) =>
      warmStartDifferences(specOf(parentPatch), parent.network.preprocessing, specOf(childPatch));
    const none = () => undefined;
    expect(same(none, (s) => Object.assign(s.features[3], { embeddingDim: 8 }).embeddingDim)).toEqual([
      'features[3] "tags": embeddingDim is 3 in the parent, 8 here',
    ]);
    const tagsDefault = (s: ModelSpecInput) => delete (s.features[3] as { embeddingDim?: number }).embeddingDim;
    expect(same(tagsDefault, (s) => Object.assign(s.features[3], { embeddingDim: 8 }))).toEqual([]);
    const bucketised = (dim?: number) => (s: ModelSpecInput) =>
      Object.assign(s.features[4], { buckets: [0, 10], ...(dim && { embeddingDim: dim }) });
    expect(same(bucketised(), bucketised(8))).toEqual([]);
    expect(same(none, (s) => Object.assign(s.model, { taskExperts: 3 }))).toEqual([]);
    const ple = (levels?: number) => (s: ModelSpecInput) => Object.assign(s.model, { architecture: 'ple', levels });
    expect(same(ple(), ple(1))).toEqual([]);
    expect(same(ple(), ple(2))).toEqual(['model.levels is 1 in the parent, 2 here']);
    expect(same((s) => Object.assign(s.model, { architecture: 'cgc' }), ple(1))).toEqual([]);
    const bottom = (units?: number[]) => (s: ModelSpecInput) =>
      Object.assign(s.model, { architecture: 'shared-bottom', bottomUnits: units, experts: 3 });
    expect(same(bottom(), bottom([8]))).toEqual([]);
    expect(same(bottom(), bottom([6]))).toEqual(['model.bottomUnits is [8] in the parent, [6] here']);
  });

  it("names a change of an attention pooling's target or unit, its default spelt out or not", () => {
    const attention = (units?: number[]) =>
      specOf((s) => Object.assign(s.features[2], { pooling: 'attention', target: 'item', attentionUnits: units }));
    const differences = (child: typeof spec) => warmStartDifferences(attention(), parent.network.preprocessing, child);
    expect(differences(attention([16]))).toEqual([]);
    const from = new MultiTaskNetwork(attention(), fitPreprocessing(attention(), rows(attention(), 100, 8, 1)));
    const { network } = warmStartNetwork(from, attention([16]), rows(spec, 10, 4, 4));
    for (const name of ['attention/history/dense0/kernel', 'attention/history/dense1/bias'])
      expect(network.snapshot().get(name)).toEqual(from.snapshot().get(name));
    network.dispose();
    from.dispose();
    expect(differences(attention([8]))).toEqual([
      'features[2] "history": attentionUnits is [16] in the parent, [8] here',
    ]);
    expect(differences(spec)).toEqual([
      'features[2] "history": pooling is "attention" in the parent, "mean" here',
      'features[2] "history": target is "item" in the parent, unset here',
      'features[2] "history": attentionUnits is [16] in the parent, unset here',
    ]);
  });

  it('trains a new id a row of its own and leaves the parent untouched', async () => {
    const parentWeights = parent.network.snapshot();
    const incremental = specOf((s) => (s.training = { ...s.training, epochs: 2 }));
    const { model, summary } = await MultiTaskModel.train(incremental, rows(incremental, 600, 8, 6, 4), undefined, {
      parent,
    });
    try {
      expect(summary.warmStart?.vocabularies[0]).toEqual({ feature: 'item', before: 8, added: 4, overflow: 0 });
      expect(summary.vocabularyOverflow).toEqual([]);
      const row = model.encoder.encodeCategory(0, 'i11');
      expect(row).toBeGreaterThan(8);
      expect(parent.encoder.encodeCategory(0, 'i11')).toBe(0);
      // i11 (odd) and i10 (even) now score apart: the new rows learnt the items' click rates.
      const score = (item: string) =>
        model.predictRecords([{ item, user: 'u1', history: [], tags: [], x: 12 }]).scores[0][0];
      expect(score('i11') - score('i10')).toBeGreaterThan(0.2);
      for (const [name, values] of parent.network.snapshot()) expect(values).toEqual(parentWeights.get(name));
    } finally {
      model.dispose();
    }
  });

  it("goes on with the Adam state the parent kept only when asked, a grown row's moments at zero", async () => {
    const state = parent.network.optimizerState!;
    // 3 epochs of 540 training rows (a tenth of 600 held out) in batches of 64.
    expect(state.step).toBe(3 * 9);
    const table = rows(spec, 300, 8, 2, 4); // items i4..i11: four new rows of item
    const fresh = warmStartNetwork(parent.network, spec, table);
    const continued = warmStartNetwork(parent.network, spec, table, undefined, { continueOptimizer: true });
    const unkept = (await MultiTaskModel.train(spec, rows(spec, 200, 8, 3))).model;
    try {
      expect(unkept.network.optimizerState).toBeUndefined(); // kept only when asked
      expect(fresh.optimizer).toBeUndefined();
      const child = continued.optimizer!;
      expect(child.step).toBe(state.step);
      for (const moments of ['first', 'second'] as const) {
        const learnt = state[moments].get('embedding/item')!;
        const grown = child[moments].get('embedding/item')!;
        expect(grown).toHaveLength(learnt.length + 4 * 4);
        expect(grown.subarray(0, learnt.length)).toEqual(learnt);
        expect(grown.subarray(learnt.length).every((m) => m === 0)).toBe(true);
        expect(learnt.some((m) => m !== 0)).toBe(true);
      }
      expect([...child.first.keys()]).toEqual([...continued.network.snapshot().keys()]);
      // A weight that did not grow shares the parent's moments: only read, never copied.
      expect(child.second.get('experts/0/dense0/kernel')).toBe(state.second.get('experts/0/dense0/kernel'));
    } finally {
      [unkept.network, fresh.network, continued.network].forEach((n) => n.dispose());
    }
  });

  it('starts from the parent after an artifact round trip alike', () => {
    const restored = MultiTaskModel.fromArtifact(parent.toArtifact());
    const a = warmStartNetwork(restored.network, spec, rows(spec, 100, 8, 7, 4));
    const b = warmStartNetwork(parent.network, spec, rows(spec, 100, 8, 7, 4));
    try {
      for (const [name, values] of a.network.snapshot()) expect(values).toEqual(b.network.snapshot().get(name));
    } finally {
      [restored, a.network, b.network].forEach((m) => m.dispose());
    }
  });
});
