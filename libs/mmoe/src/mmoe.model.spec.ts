import * as tf from '@tensorflow/tfjs';

import { ArtifactError, decodeArtifact, encodeArtifact } from './artifact/artifact.codec';
import { initBackend } from './backend/backend';
import { RawTable } from './data/raw-table';
import { logLoss, rmse } from './eval/metrics';
import { MultiTaskModel } from './mmoe.model';
import { parseModelSpec } from './model-spec/model-spec';
import { ModelSpecInput } from './model-spec/model-spec.schema';
import { Rng } from './util/random';

beforeAll(() => initBackend('wasm'));

/**
 * Known structure: a click depends on the user's segment matching the item's genre and on a numeric affinity; a
 * like shares the affinity but has its own genre preference; watch time grows with affinity. Some labels missing.
 */
function interactions(
  n: number,
  seed: number,
  spec: ReturnType<typeof parseModelSpec>,
  fixed: Record<string, string> = {},
): RawTable {
  const rng = new Rng(seed);
  const table = new RawTable(spec);
  for (let i = 0; i < n; i++) {
    const segment = rng.int(4);
    const genre = rng.int(6);
    const affinity = rng.gaussian();
    const noise = rng.gaussian();
    const clickLogit = (segment === genre % 4 ? 2 : -1) + 1.5 * affinity;
    const likeLogit = (genre === 5 ? 1.5 : -0.5) + affinity;
    table.add({
      segment: `s${segment}`,
      genre: `g${genre}`,
      affinity: String(affinity),
      noise: String(noise),
      click: rng.next() < 1 / (1 + Math.exp(-clickLogit)) ? '1' : '0',
      like: rng.next() < 0.1 ? '' : rng.next() < 1 / (1 + Math.exp(-likeLogit)) ? '1' : '0',
      secs: String(30 + 10 * affinity + 2 * rng.gaussian()),
      ...fixed,
    });
  }
  return table;
}

const baseSpec = (
  model: Partial<ModelSpecInput['model']> = {},
  training: Partial<NonNullable<ModelSpecInput['training']>> = {},
) =>
  parseModelSpec({
    features: [
      { name: 'segment', type: 'categorical', embeddingDim: 4 },
      { name: 'genre', type: 'categorical', embeddingDim: 4 },
      { name: 'affinity', type: 'numeric' },
      { name: 'noise', type: 'numeric' },
    ],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'like', label: 'like', type: 'binary' },
      { name: 'watch', label: 'secs', type: 'regression', weight: 0.5 },
    ],
    model: { architecture: 'mmoe', experts: 4, expertUnits: [16], towerUnits: [8], ...model },
    training: { epochs: 6, batchSize: 128, learningRate: 0.01, seed: 3, earlyStoppingPatience: 2, ...training },
  });

const constantLogLoss = (labels: Float32Array) => {
  const present = labels.filter((y) => !Number.isNaN(y));
  const rate = present.reduce((a, b) => a + b, 0) / present.length;
  return logLoss(new Float32Array(present.length).fill(rate), present);
};

describe('MultiTaskModel', () => {
  const spec = baseSpec();
  const train = interactions(3000, 1, spec);
  const test = interactions(1000, 2, spec);
  let trained: Awaited<ReturnType<typeof MultiTaskModel.train>>;

  beforeAll(async () => {
    trained = await MultiTaskModel.train(spec, train);
  });
  afterAll(() => trained.model.dispose());

  it('learns every task clearly better than a constant predictor', () => {
    const report = trained.model.evaluate(test);
    const encoded = trained.model.encode(test);
    expect(report.tasks.click.auc).toBeGreaterThan(0.75);
    expect(report.tasks.click.logloss).toBeLessThan(0.85 * constantLogLoss(encoded.labels[0]));
    expect(report.tasks.like.auc).toBeGreaterThan(0.7);
    expect(report.tasks.like.count).toBeLessThan(1000); // missing labels are left out
    const secs = encoded.labels[2];
    const mean = secs.reduce((a, b) => a + b, 0) / secs.length;
    expect(report.tasks.watch.rmse).toBeLessThan(0.6 * rmse(new Float32Array(secs.length).fill(mean), secs));
  });

  it('reports gate utilisation per task, a distribution over the experts', () => {
    const report = trained.model.evaluate(test);
    for (const task of ['click', 'like', 'watch']) {
      const { utilisation, experts, entropy, largestShare } = report.gates[task];
      expect(experts).toEqual([0, 1, 2, 3]);
      expect(utilisation.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      // Collapse as numbers: entropy in [0, ln 4], the largest share in [1/4, 1].
      expect(entropy).toBeGreaterThanOrEqual(0);
      expect(entropy).toBeLessThanOrEqual(Math.log(4) + 1e-6);
      expect(largestShare).toBeCloseTo(Math.max(...utilisation), 6);
    }
  });

  it('keeps its gates from polarising with gate dropout (higher entropy, smaller largest share)', async () => {
    const polarising = baseSpec({ experts: 4, gate: { type: 'softmax', temperature: 0.2 } });
    const regularised = baseSpec({ experts: 4, gate: { type: 'softmax', temperature: 0.2, dropout: 0.5 } });
    const gatesOf = async (s: typeof spec) => {
      const { model } = await MultiTaskModel.train(s, interactions(3000, 1, s));
      const { gates } = model.evaluate(interactions(1000, 2, s));
      model.dispose();
      return Object.values(gates);
    };
    const [plain, dropped] = [await gatesOf(polarising), await gatesOf(regularised)];
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    expect(mean(dropped.map((g) => g.entropy))).toBeGreaterThan(mean(plain.map((g) => g.entropy)));
    expect(mean(dropped.map((g) => g.largestShare))).toBeLessThan(mean(plain.map((g) => g.largestShare)));
  });

  it('keeps the best epoch and reports the run', () => {
    const { summary } = trained;
    expect(summary.epochsRun).toBeGreaterThanOrEqual(summary.bestEpoch);
    expect(summary.history).toHaveLength(summary.epochsRun);
    const best = Math.max(...summary.history.map((h) => h.metric));
    expect(summary.valid.tasks.click.auc).toBeCloseTo(best, 6);
    expect(summary.examplesPerSec).toBeGreaterThan(0);
  });

  it('names the tasks no training row labels, whose towers learnt nothing', async () => {
    expect(trained.summary.unlabelledTasks).toEqual([]);
    const quick = baseSpec({}, { epochs: 1 });
    const { model, summary } = await MultiTaskModel.train(quick, interactions(500, 4, quick, { like: '', secs: '' }));
    model.dispose();
    expect(summary.unlabelledTasks).toEqual(['like', 'watch']);
  });

  it("reports the kept weights' calibrated validation as a fresh evaluation of those rows does", async () => {
    // The report and the calibration come from the scores the trainer's last kept epoch computed, not a pass again.
    for (const calibration of ['platt', 'isotonic'] as const) {
      const s = baseSpec({}, { epochs: 3, calibration });
      const valid = interactions(400, 7, s);
      const { model, summary } = await MultiTaskModel.train(s, interactions(1500, 6, s), valid);
      expect(model.calibration.some((c) => c !== null)).toBe(true);
      expect(summary.valid).toEqual(model.evaluate(valid));
      model.dispose();
    }
  });

  it('trains on the validation share too when told not to hold it back, and still validates on it', async () => {
    const s = baseSpec({}, { epochs: 2, earlyStoppingPatience: 0 });
    const data = interactions(1000, 8, s);
    const held = await MultiTaskModel.train(s, data);
    const kept = await MultiTaskModel.train(s, data, undefined, { holdValidation: false });
    expect(held.summary.examplesTrained).toBe(2 * 900);
    expect(kept.summary.examplesTrained).toBe(2 * 1000);
    expect(kept.summary.valid.examples).toBe(100);
    held.model.dispose();
    kept.model.dispose();
  });

  it('predicts the same after an artifact round trip', () => {
    const records = [
      { segment: 's1', genre: 'g1', affinity: 0.5, noise: 0 },
      { segment: 'unseen', affinity: -1 },
    ];
    const before = trained.model.predictRecords(records, { gateWeights: true });
    const restored = MultiTaskModel.fromArtifact(trained.model.toArtifact({ note: 'test' }));
    try {
      const after = restored.predictRecords(records, { gateWeights: true });
      before.scores.forEach((s, t) => expect(Array.from(after.scores[t])).toEqual(Array.from(s)));
      expect(after.gateWeights).toEqual(before.gateWeights);
    } finally {
      restored.dispose();
    }
  });

  it("records another training section when asked (a job's overrides), and nothing else", () => {
    const { spec } = trained.model;
    const recorded = { ...spec, training: { ...spec.training, epochs: spec.training.epochs + 5 } };
    const restored = MultiTaskModel.fromArtifact(trained.model.toArtifact({}, recorded));
    try {
      expect(restored.spec).toEqual(recorded);
    } finally {
      restored.dispose();
    }
    const otherTasks = { ...spec, tasks: spec.tasks.slice(1) };
    expect(() => trained.model.toArtifact({}, otherTasks)).toThrow('in the training section only');
  });

  it('refuses a corrupted, foreign or mismatching artifact with a clear error', () => {
    const bytes = trained.model.toArtifact();
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3] ^= 0xff;
    expect(() => MultiTaskModel.fromArtifact(flipped)).toThrow(/corrupted: sha256/);
    expect(() => MultiTaskModel.fromArtifact(Buffer.from('hello world, not a model at all, padding padding'))).toThrow(
      /not an MMoE model artifact/,
    );
    expect(() => MultiTaskModel.fromArtifact(bytes.subarray(0, 100))).toThrow(ArtifactError);

    const { header, weights } = decodeArtifact(bytes);
    const otherShape = { ...header.spec, model: { ...header.spec.model, expertUnits: [8] } };
    const reencoded = encodeArtifact(
      { ...header, spec: otherShape },
      new Map(header.weights.map((w) => [w.name, { shape: w.shape, values: weights.get(w.name)! }])),
    );
    expect(() => MultiTaskModel.fromArtifact(reencoded)).toThrow(
      /does not match its spec: weight "experts\/0\/dense0\/kernel" has shape \[10,16\], the spec needs \[10,8\]/,
    );
    const versioned = Buffer.from(bytes);
    versioned.writeUInt32LE(99, 8);
    expect(() => MultiTaskModel.fromArtifact(versioned)).toThrow(/format version 99 is not supported/);
  });
});

describe.each([
  ['shared-bottom', {}],
  ['omoe', {}],
  ['ple', { experts: 2, taskExperts: 1 }],
  ['ple', { experts: 2, taskExperts: 1, levels: 2 }],
  ['mmoe', { gate: { type: 'noisy-top-k' as const, k: 2, balanceLossWeight: 0.1 } }],
  ['mmoe', { uncertaintyWeighting: true }],
])('architecture %s %j', (architecture, extra) => {
  it('trains, beats a constant predictor and leaks no tensor', async () => {
    const spec = baseSpec({ architecture: architecture as 'mmoe', ...extra }, { epochs: 3 });
    const before = tf.memory().numTensors;
    const { model } = await MultiTaskModel.train(spec, interactions(1500, 5, spec));
    const report = model.evaluate(interactions(500, 6, spec));
    expect(report.tasks.click.auc).toBeGreaterThan(0.75);
    if (spec.model.gate.type === 'noisy-top-k') {
      for (const gate of Object.values(report.gates)) expect(gate.load!.reduce((a, b) => a + b, 0)).toBeCloseTo(2, 4);
    }
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('training loop', () => {
  it('is reproducible from the seed', async () => {
    const spec = baseSpec({}, { epochs: 1 });
    const data = interactions(600, 9, spec);
    const probe = [{ segment: 's2', genre: 'g3', affinity: 0.2, noise: 1 }];
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const { model } = await MultiTaskModel.train(spec, data);
      runs.push(Array.from(model.predictRecords(probe).scores[0]));
      model.dispose();
    }
    expect(runs[0]).toEqual(runs[1]);
  });

  it("keeps the epoch of the lowest validation loss while the first task's metric is undefined there", async () => {
    const spec = baseSpec({}, { epochs: 4, earlyStoppingPatience: 0 });
    // A validation slice where nobody clicked: no click AUC to choose an epoch by.
    const valid = interactions(300, 13, spec, { click: '0' });
    const { model, summary } = await MultiTaskModel.train(spec, interactions(800, 12, spec), valid);
    model.dispose();
    expect(summary.history.every((h) => Number.isNaN(h.metric))).toBe(true);
    const losses = summary.history.map((h) => h.validLoss);
    expect(summary.bestEpoch).toBe(losses.indexOf(Math.min(...losses)) + 1);
    expect(summary.bestEpoch).toBeGreaterThan(1);
  });

  it('reports progress and stops early when validation stops improving', async () => {
    const spec = baseSpec({}, { epochs: 30, earlyStoppingPatience: 1, learningRate: 0.05 });
    const progress: number[] = [];
    const { model, summary } = await MultiTaskModel.train(spec, interactions(800, 11, spec), undefined, {
      progressEvery: 1,
      onProgress: (p) => progress.push(p.step),
    });
    model.dispose();
    expect(summary.stoppedEarly).toBe(true);
    expect(summary.epochsRun).toBeLessThan(30);
    expect(summary.epochsRun - summary.bestEpoch).toBe(1);
    expect(progress.slice(0, 3)).toEqual([1, 2, 3]);
  });
});
