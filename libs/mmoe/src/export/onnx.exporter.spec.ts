import { InferenceSession } from 'onnxruntime-node';

import { initBackend } from '../backend/backend';
import { PreprocessingState } from '../data/preprocessor';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import { MultiTaskNetwork } from '../model/network';
import { exportOnnx } from './onnx.exporter';

beforeAll(() => initBackend('wasm'));

const numeric = [
  { name: 'age', mean: 30, std: 5 },
  { name: 'price', mean: 10, std: 2 },
];
const categorical = [
  { name: 'genre', embeddingDim: 4, vocab: ['a', 'b', 'c'] },
  { name: 'user', embeddingDim: 3, hashBuckets: 100 },
];
const tasks: ModelSpecInput['tasks'] = [
  { name: 'click', label: 'click', type: 'binary' },
  { name: 'watch', label: 'secs', type: 'regression' },
];
const labels = [
  { task: 'click', mean: 0, std: 1 },
  { task: 'watch', mean: 40, std: 12 },
];

/** An untrained network (the interface does not depend on the weights) and what onnxruntime sees of its export. */
async function exported(model: ModelSpecInput['model'], preprocessing: Omit<PreprocessingState, 'labels'>) {
  const spec = parseModelSpec({
    features: [
      ...preprocessing.numeric.map((f) => ({ name: f.name, type: 'numeric' as const })),
      ...preprocessing.categorical.map((c) => ({
        name: c.name,
        type: 'categorical' as const,
        embeddingDim: c.embeddingDim,
      })),
    ],
    tasks,
    model,
  });
  const network = new MultiTaskNetwork(spec, { ...preprocessing, labels });
  const bytes = exportOnnx({ spec, preprocessing: network.preprocessing, weights: network.snapshot() });
  const session = await InferenceSession.create(bytes);
  const describe = (values: readonly InferenceSession.ValueMetadata[]) =>
    values.map((v) => (v.isTensor ? [v.name, v.type, v.shape] : [v.name]));
  const result = { bytes, network, inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) };
  await session.release();
  network.dispose();
  return result;
}

describe('exportOnnx', () => {
  it('takes int32 embedding rows and standardised numerics, and gives scores and the weights of every gate', async () => {
    const { inputs, outputs } = await exported(
      { architecture: 'ple', experts: 2, taskExperts: 1, expertUnits: [8] },
      { numeric, categorical, sequence: [] },
    );
    expect(inputs).toEqual([
      ['cat_0', 'int32', ['N']],
      ['cat_1', 'int32', ['N']],
      ['numeric', 'float32', ['N', 2]],
    ]);
    expect(outputs).toEqual(
      expect.arrayContaining([
        ['scores', 'float32', ['N', 2]],
        ['gates_0', 'float32', ['N', 3]],
        ['gates_1', 'float32', ['N', 3]],
      ]),
    );
    expect(outputs).toHaveLength(3);
  });

  it('has no numeric input without numeric features, and no gate output for shared-bottom', async () => {
    const { inputs, outputs } = await exported(
      { architecture: 'shared-bottom', expertUnits: [8] },
      { numeric: [], categorical, sequence: [] },
    );
    expect(inputs.map(([name]) => name)).toEqual(['cat_0', 'cat_1']);
    expect(outputs).toEqual([['scores', 'float32', ['N', 2]]]);
  });

  it('keeps the inference weights only, as raw float32', async () => {
    const { bytes, inputs } = await exported(
      {
        architecture: 'mmoe',
        experts: 3,
        expertUnits: [16, 8],
        towerUnits: [4],
        gate: { type: 'noisy-top-k', k: 2 },
        uncertaintyWeighting: true,
      },
      { numeric, categorical: [], sequence: [] },
    );
    expect(inputs).toEqual([['numeric', 'float32', ['N', 2]]]);
    // 3 experts (2·16+16 + 16·8+8), 2 gates (2·3+3), 2 towers (8·4+4 + 4·1+1); not the gate noise nor uncertainty weights.
    const inferenceParams = 3 * (48 + 136) + 2 * 9 + 2 * (36 + 5);
    expect(bytes.length).toBeGreaterThan(4 * inferenceParams);
    expect(bytes.length).toBeLessThan(4 * inferenceParams + 4096);
  });

  it('builds from public weights alone, and names a weight that is missing or of the wrong size', async () => {
    const spec = parseModelSpec({
      features: [{ name: 'age', type: 'numeric' }],
      tasks,
      model: { architecture: 'mmoe', experts: 2, expertUnits: [4] },
    });
    const preprocessing = { numeric: numeric.slice(0, 1), categorical: [], sequence: [], labels };
    const network = new MultiTaskNetwork(spec, preprocessing);
    const weights = network.snapshot();
    network.dispose();
    expect(exportOnnx({ spec, preprocessing, weights }).length).toBeGreaterThan(0);
    weights.set('experts/1/dense0/kernel', new Float32Array(3));
    expect(() => exportOnnx({ spec, preprocessing, weights })).toThrow(
      'weight "experts/1/dense0/kernel" has 3 values, the spec needs 4 (shape [1,4])',
    );
    weights.delete('gates/0/bias');
    weights.delete('experts/1/dense0/kernel');
    expect(() => exportOnnx({ spec, preprocessing, weights })).toThrow(
      'the model has no weight "experts/1/dense0/kernel"',
    );
  });
});
