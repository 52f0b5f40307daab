import { initBackend, MultiTaskModel, parseModelSpec, RawTable, Rng } from '@app/mmoe';

import { MIN_REFIT_ROWS, refitOf, refitOnHoldout, refitsJob } from './refit.rules';

describe('refitsJob', () => {
  const events = { kind: 'events' as const, from: '2025-02-01T00:00:00Z', to: '2025-02-08T00:00:00Z' };
  const csv = { kind: 'csv' as const, path: '/data/x.csv' };
  const incremental = { kind: 'incremental' as const, to: '2025-02-08T00:00:00Z' };

  it.each([
    ['full', events, true],
    ['full', csv, true],
    ['full', incremental, false],
    ['all', events, true],
    ['all', incremental, true],
    ['none', events, false],
    ['none', incremental, false],
  ] as const)('TRAINING_REFIT=%s refits a job on %j: %s', (setting, source, refits) => {
    expect(refitsJob({ source }, setting)).toBe(refits);
  });

  it("follows the job's own refit over the setting, either way", () => {
    expect(refitsJob({ source: incremental, refit: true }, 'full')).toBe(true);
    expect(refitsJob({ source: events, refit: false }, 'all')).toBe(false);
  });

  it('refits only on at least MIN_REFIT_ROWS held-out rows, and says when a refit asked for is left out', () => {
    expect(refitOf({ source: events }, 'full', MIN_REFIT_ROWS)).toBe('refit');
    expect(refitOf({ source: events }, 'full', MIN_REFIT_ROWS - 1)).toBe('too few');
    expect(refitOf({ source: incremental }, 'full', 1000)).toBe('none');
  });
});

describe('refitOnHoldout', () => {
  const spec = parseModelSpec({
    features: [
      { name: 'item', type: 'categorical', embeddingDim: 4 },
      { name: 'x', type: 'numeric' },
    ],
    tasks: [{ name: 'click', label: 'click', type: 'binary' }],
    model: { experts: 2, expertUnits: [8], towerUnits: [4] },
    training: { epochs: 3, batchSize: 64, learningRate: 0.02, seed: 5, earlyStoppingPatience: 0 },
  });
  /** Items i{offset}…: a click is likelier on odd ones, so that a new item's row has something to learn. */
  const rows = (n: number, items: number, seed: number, offset = 0) => {
    const rng = new Rng(seed);
    const table = new RawTable(spec);
    for (let r = 0; r < n; r++) {
      const item = offset + rng.int(items);
      table.add({ item: `i${item}`, x: rng.gaussian(), click: rng.next() < (item % 2 ? 0.8 : 0.2) ? 1 : 0 });
    }
    return table;
  };
  let candidate: MultiTaskModel;

  beforeAll(async () => {
    await initBackend('wasm');
    candidate = (await MultiTaskModel.train(spec, rows(600, 8, 1), undefined, { keepOptimizer: true })).model;
  });
  afterAll(() => candidate.dispose());

  it('trains the candidate one epoch more on the held-out rows, its optimizer going on, learning ids first seen there; the candidate is kept', async () => {
    const before = candidate.network.snapshot();
    const candidateSteps = candidate.network.optimizerState!.step;
    // The held-out slice: the old items and two released since.
    const { model, summary } = await refitOnHoldout(candidate, rows(300, 10, 2), { keepOptimizer: true });
    try {
      expect(summary).toMatchObject({ epochsRun: 1, bestEpoch: 1, optimizer: 'continued' });
      // Every row trained on (the lineage's next job starts after the slice) and calibration refitted on them.
      expect(summary.valid.examples).toBe(300);
      const items = summary.warmStart!.vocabularies.find((v) => v.feature === 'item')!;
      expect(items).toMatchObject({ before: 8, added: 2, overflow: 0 });
      const column = model.network.preprocessing.categorical.findIndex((c) => c.name === 'item');
      expect(candidate.encoder.encodeCategory(column, 'i9')).toBe(0);
      expect(model.encoder.encodeCategory(column, 'i9')).toBeGreaterThan(8); // after the candidate's rows
      // The weights moved; the candidate's did not (its metrics are what the gate judged).
      const after = model.network.snapshot();
      expect(after.get('embedding/item')!.subarray(0, 9 * 4)).not.toEqual(before.get('embedding/item')!);
      for (const [name, values] of candidate.network.snapshot()) expect(values).toEqual(before.get(name));
      // One more epoch of the candidate's run: its Adam goes on (300 rows in batches of 64 after its own steps).
      expect(model.network.optimizerState!.step).toBe(candidateSteps + 5);
      expect(candidate.network.optimizerState).toBeUndefined(); // used once, then dropped
      // The candidate's spec, 3 epochs: a retrain with the version's spec trains as many, not the refit's one.
      expect(model.spec).toEqual(candidate.spec);

      // Refitted again, it has no state left to go on with: a fresh Adam, said so.
      const again = await refitOnHoldout(candidate, rows(300, 10, 2));
      again.model.dispose();
      expect(again.summary.optimizer).toBe('fresh');
    } finally {
      model.dispose();
    }
  });
});
