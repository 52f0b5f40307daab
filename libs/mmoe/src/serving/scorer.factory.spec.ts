import { initBackend } from '../backend/backend';
import { EncodedDataset } from '../data/preprocessor';
import { RawTable } from '../data/raw-table';
import { exportOnnx } from '../export/onnx.exporter';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { Rng } from '../util/random';
import { createScorer } from './scorer.factory';

beforeAll(() => initBackend('wasm'));

const spec = parseModelSpec({
  features: [
    { name: 'genre', type: 'categorical', embeddingDim: 3 },
    { name: 'affinity', type: 'numeric' },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'watch', label: 'secs', type: 'regression' },
  ],
  model: { architecture: 'mmoe', experts: 3, expertUnits: [8], towerUnits: [4] },
  training: { epochs: 1, batchSize: 64, learningRate: 0.02, seed: 5, earlyStoppingPatience: 0 },
});

function table(n: number, seed: number): RawTable {
  const rng = new Rng(seed);
  const out = new RawTable(spec);
  for (let i = 0; i < n; i++) {
    const genre = rng.int(5);
    const affinity = rng.gaussian();
    out.add({
      genre: `g${genre}`,
      affinity: String(affinity),
      click: rng.next() < 1 / (1 + Math.exp(-(affinity + (genre === 2 ? 1 : -1)))) ? '1' : '0',
      secs: String(60 + 15 * affinity + rng.gaussian()),
    });
  }
  return out;
}

describe('createScorer', () => {
  let model: MultiTaskModel;
  let data: EncodedDataset;

  beforeAll(async () => {
    model = (await MultiTaskModel.train(spec, table(600, 1))).model;
    data = model.encode(table(200, 2));
  });
  afterAll(() => model.dispose());

  it('picks onnxruntime, exporting the model when no ONNX bytes are given', async () => {
    const scorer = await createScorer(model);
    expect(scorer.engine).toBe('onnxruntime');
    const { scores } = await scorer.score(data);
    const expected = model.predict(data).scores;
    scores.forEach((s, t) => s.forEach((v, i) => expect(v).toBeCloseTo(expected[t][i], t === 0 ? 5 : 3)));
    await scorer.dispose();
    await expect(scorer.score(data)).rejects.toThrow(/disposed/);
  });

  it('runs the ONNX bytes it is given, with the options given', async () => {
    const scorer = await createScorer(model, exportOnnx(model.network), 'onnxruntime', {
      intraOpThreads: 2,
      batchSize: 64,
    });
    expect(scorer.engine).toBe('onnxruntime');
    expect((await scorer.score(data, { gateWeights: true })).gateWeights).toHaveLength(2);
    await scorer.dispose();
  });

  it('refuses ONNX bytes that are not a model rather than falling back', async () => {
    await expect(createScorer(model, new Uint8Array([1, 2, 3]))).rejects.toThrow();
  });

  it('scores with tfjs when asked to, leaving the model usable after dispose', async () => {
    const scorer = await createScorer(model, undefined, 'tfjs');
    expect(scorer.engine).toBe('tfjs');
    expect(await scorer.score(data, { gateWeights: true })).toEqual(model.predict(data, { gateWeights: true }));
    await scorer.dispose();
    await expect(scorer.score(data)).rejects.toThrow(/disposed/);
    expect(model.predict(data).scores[0]).toHaveLength(data.size);
  });

  it('falls back to tfjs when onnxruntime-node cannot be loaded', async () => {
    await jest.isolateModulesAsync(async () => {
      jest.doMock('onnxruntime-node', () => {
        throw new Error('no onnxruntime binding for this platform');
      });
      const isolated: typeof import('./scorer.factory') = await import('./scorer.factory');
      const scorer = await isolated.createScorer(model);
      expect(scorer.engine).toBe('tfjs');
      expect((await scorer.score(data)).scores).toEqual(model.predict(data).scores);
      await scorer.dispose();
    });
    jest.dontMock('onnxruntime-node');
  });
});
