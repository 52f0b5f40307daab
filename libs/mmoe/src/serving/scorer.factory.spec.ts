import { decodeArtifact, encodeArtifact, type ArtifactHeader } from '../artifact/artifact.codec';
import { initBackend } from '../backend/backend';
import { EncodedDataset } from '../data/preprocessor';
import { RawTable } from '../data/raw-table';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { predict } from '../model/predict';
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
    const scorer = await createScorer(model, model.toOnnx(), 'onnxruntime', {
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

  describe('with a calibrated model', () => {
    let calibrated: MultiTaskModel;
    let fit: Awaited<ReturnType<typeof MultiTaskModel.train>>['summary'];

    beforeAll(async () => {
      const isotonic = parseModelSpec({ ...spec, training: { ...spec.training, calibration: 'isotonic' } });
      ({ model: calibrated, summary: fit } = await MultiTaskModel.train(isotonic, table(600, 1)));
    });
    afterAll(() => calibrated?.dispose());

    it('stores the calibration of each binary task in the artifact, and reports ECE before and after on validation', () => {
      expect(calibrated.calibration.map((c) => c?.type ?? null)).toEqual(['isotonic', null]);
      expect(fit.calibration.click.method).toBe('isotonic');
      const { before, after } = fit.valid.calibration.click;
      expect(after.ece).toBeLessThan(before.ece); // fitted on these rows: it can only get closer
      expect(after.curve).toHaveLength(15);
      const restored = MultiTaskModel.fromArtifact(calibrated.toArtifact());
      try {
        expect(restored.calibration).toEqual(calibrated.calibration);
        expect(restored.predict(data).scores).toEqual(calibrated.predict(data).scores);
      } finally {
        restored.dispose();
      }
    });

    it('serves the same calibrated scores on onnxruntime and tfjs, as model.predict gives them', async () => {
      const raw = predict(calibrated.network, data).scores;
      const expected = calibrated.predict(data).scores;
      expect(expected[0]).not.toEqual(raw[0]);
      expect(expected[1]).toEqual(raw[1]); // regression tasks are not calibrated
      for (const engine of ['onnxruntime', 'tfjs'] as const) {
        const scorer = await createScorer(calibrated, undefined, engine);
        expect(scorer.engine).toBe(engine);
        const { scores } = await scorer.score(data);
        scores.forEach((s, t) => s.forEach((v, i) => expect(v).toBeCloseTo(expected[t][i], t === 0 ? 5 : 3)));
        await scorer.dispose();
      }
    });

    it('loads an artifact written before calibration existed, as uncalibrated', () => {
      const { header, weights } = decodeArtifact(model.toArtifact());
      const old: Omit<ArtifactHeader, 'weights'> = { ...header };
      delete old.calibration;
      const bytes = encodeArtifact(
        old,
        new Map(
          [...weights].map(([name, values]) => [name, { shape: model.network.weightShapes().get(name)!, values }]),
        ),
      );
      expect(decodeArtifact(bytes).header.calibration).toBeUndefined();
      const loaded = MultiTaskModel.fromArtifact(bytes);
      try {
        expect(loaded.calibration).toEqual([null, null]);
        expect(loaded.predict(data).scores).toEqual(model.predict(data).scores);
      } finally {
        loaded.dispose();
      }
    });
  });
});
