import { initBackend } from '../backend/backend';
import { RawTable } from '../data/raw-table';
import { exportOnnx } from '../export/onnx.exporter';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { Rng } from '../util/random';
import { OnnxScorer } from './onnx.scorer';
import { checkInt8, INT8_AUC_TOLERANCE } from './precision.check';

beforeAll(() => initBackend('wasm'));

const spec = parseModelSpec({
  features: [
    { name: 'user_segment', type: 'categorical', embeddingDim: 4, side: 'user' },
    { name: 'genre', type: 'categorical', embeddingDim: 4 },
    { name: 'affinity', type: 'numeric' },
    { name: 'user_age', type: 'numeric', side: 'user' },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'watch', label: 'secs', type: 'regression' },
  ],
  model: { architecture: 'mmoe', experts: 4, expertUnits: [32, 16], towerUnits: [8] },
  training: { epochs: 4, batchSize: 64, learningRate: 0.01, seed: 3, earlyStoppingPatience: 0 },
});

function table(n: number, seed: number): RawTable {
  const rng = new Rng(seed);
  const rows = new RawTable(spec);
  for (let i = 0; i < n; i++) {
    const [segment, genre, affinity, age] = [rng.int(5), rng.int(8), rng.gaussian(), rng.gaussian()];
    const logit = (segment === genre % 5 ? 1.5 : -1) + affinity - 0.5 * age;
    rows.add({
      user_segment: `s${segment}`,
      genre: `g${genre}`,
      affinity: String(affinity),
      user_age: String(age),
      click: rng.next() < 1 / (1 + Math.exp(-logit)) ? '1' : '0',
      secs: String(20 + 5 * affinity + rng.gaussian()),
    });
  }
  return rows;
}

describe('int8 graphs', () => {
  let model: MultiTaskModel;

  beforeAll(async () => {
    model = (await MultiTaskModel.train(spec, table(3000, 1))).model;
  });

  afterAll(() => model.dispose());

  const source = () => ({ spec, preprocessing: model.network.preprocessing, weights: model.network.snapshot() });

  it('run every dense layer on int8 weights, in both layouts', () => {
    for (const layout of ['rows', 'request'] as const) {
      const [fp32, int8] = [exportOnnx(source(), layout), exportOnnx(source(), layout, 'int8')];
      const text = Buffer.from(int8).toString('latin1');
      expect(text).toContain('MatMulInteger');
      expect(text).toContain('DynamicQuantizeLinear');
      // No node of op_type Gemm (field 4, 4 bytes long): every dense layer is quantised.
      expect(text).not.toContain('\x22\x04Gemm');
      expect(Buffer.from(fp32).toString('latin1')).not.toContain('MatMulInteger');
    }
  });

  it('score within a few thousandths of fp32, rows and request layouts alike', async () => {
    const data = model.encode(table(1000, 2));
    const scores = async (layout: 'rows' | 'request', precision: 'fp32' | 'int8') => {
      const scorer = await OnnxScorer.create(
        exportOnnx(source(), layout, precision),
        spec,
        model.network.preprocessing,
        { layout },
      );
      try {
        return (await scorer.score(data)).scores;
      } finally {
        await scorer.dispose();
      }
    };
    const fp32 = await scores('rows', 'fp32');
    for (const layout of ['rows', 'request'] as const) {
      const int8 = await scores(layout, 'int8');
      // click is a probability; watch (label units, ~20 ± 5) is compared relative to its scale.
      for (const [t, scale] of [
        [0, 1],
        [1, 20],
      ] as const) {
        let worst = 0;
        for (let i = 0; i < data.size; i++) worst = Math.max(worst, Math.abs(int8[t][i] - fp32[t][i]) / scale);
        expect(worst).toBeGreaterThan(0); // really quantised
        expect(worst).toBeLessThan(0.02);
      }
    }
  });

  it('are checked on a holdout: AUC per binary task, eligible within the tolerance', async () => {
    const check = await checkInt8(source(), model.encode(table(2000, 4)));
    expect(check).toBeDefined();
    expect(Object.keys(check!.auc)).toEqual(['click']); // regression tasks have no AUC
    expect(check!.auc.click.fp32).toBeGreaterThan(0.7);
    expect(check!.maxAucDrop).toBeCloseTo(check!.auc.click.fp32 - check!.auc.click.int8, 12);
    expect(check!.tolerance).toBe(INT8_AUC_TOLERANCE);
    expect(check!.eligible).toBe(check!.maxAucDrop <= INT8_AUC_TOLERANCE);
    expect(Math.abs(check!.maxAucDrop)).toBeLessThan(0.005);
  });
});
