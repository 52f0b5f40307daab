import { initBackend } from '../backend/backend';
import { RawTable } from '../data/raw-table';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { Rng } from '../util/random';

beforeAll(() => initBackend('wasm'));

const specOf = (levels: number) =>
  parseModelSpec({
    features: Array.from({ length: 6 }, (_, i) => ({ name: `x${i}`, type: 'numeric' })),
    tasks: [
      { name: 'a', label: 'ya', type: 'binary' },
      { name: 'b', label: 'yb', type: 'binary' },
    ],
    model: { architecture: 'ple', levels, experts: 2, taskExperts: 1, expertUnits: [4] },
    training: { epochs: 15, batchSize: 128, learningRate: 0.01, seed: 1, earlyStoppingPatience: 0 },
  });

/**
 * Structure that needs depth: each task is the sign of a product of three features (3-bit parity), two of them shared
 * between the tasks. One layer of 4 ReLUs per expert cannot carve it; two stacked levels can.
 */
function parity(spec: ModelSpec, n: number, seed: number): RawTable {
  const rng = new Rng(seed);
  const table = new RawTable(spec);
  const draw = (z: number) => (rng.next() < 1 / (1 + Math.exp(-z)) ? '1' : '0');
  for (let i = 0; i < n; i++) {
    const x = Array.from({ length: 6 }, () => rng.gaussian());
    table.add({
      ...Object.fromEntries(x.map((v, j) => [`x${j}`, String(v)])),
      ya: draw(3 * Math.sign(x[0] * x[1] * x[2])),
      yb: draw(3 * Math.sign(x[0] * x[1] * x[3])),
    });
  }
  return table;
}

describe('multi-level PLE', () => {
  it('learns a structure that needs depth clearly better with 2 levels than with 1 (CGC) of the same experts', async () => {
    const meanAuc = [];
    for (const levels of [1, 2]) {
      const spec = specOf(levels);
      const { model } = await MultiTaskModel.train(spec, parity(spec, 4000, 1));
      const report = model.evaluate(parity(spec, 3000, 2));
      meanAuc.push((report.tasks.a.auc + report.tasks.b.auc) / 2);
      // The reported gates are the last level's task gates, one per task over its own and the shared experts.
      expect(Object.keys(report.gates)).toEqual(['a', 'b']);
      expect(report.gates.a.experts).toEqual(levels === 1 ? [0, 1, 2] : [4, 5, 6]);
      model.dispose();
    }
    const [one, two] = meanAuc;
    expect(two).toBeGreaterThan(0.9);
    expect(two - one).toBeGreaterThan(0.03);
  });
});
