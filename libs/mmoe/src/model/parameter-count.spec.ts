import { initBackend } from '../backend/backend';
import { parseModelSpec, SpecValidationError } from '../model-spec/model-spec';
import { MultiTaskNetwork } from './network';
import { plannedParameters } from './parameter-count';

beforeAll(() => initBackend('wasm'));

const state = {
  numeric: [{ name: 'price', mean: 0, std: 1 }],
  categorical: [{ name: 'genre', embeddingDim: 4, vocab: ['a', 'b', 'c'] }],
  sequence: [
    { name: 'recent', separator: '|', embeddingDim: 3, maxLength: 5, pooling: 'mean' as const, hashBuckets: 50 },
  ],
  labels: [
    { task: 'click', mean: 0, std: 1 },
    { task: 'watch', mean: 30, std: 10 },
  ],
};
const specOf = (model: object) =>
  parseModelSpec({
    features: [
      { name: 'price', type: 'numeric' },
      { name: 'genre', type: 'categorical', embeddingDim: 4 },
      { name: 'recent', type: 'sequence', embeddingDim: 3, maxLength: 5 },
    ],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'watch', label: 'secs', type: 'regression' },
    ],
    model,
  });

describe('plannedParameters', () => {
  it.each([
    ['MMoE', { experts: 3, expertUnits: [16, 8], towerUnits: [4] }],
    ['PLE', { architecture: 'ple', expertUnits: [8], towerUnits: [4] }],
    ['shared bottom', { architecture: 'shared-bottom', expertUnits: [8], towerUnits: [4, 2] }],
  ])('counts what the network of %s allocates', (_name, model) => {
    const network = new MultiTaskNetwork(specOf(model), state);
    expect(plannedParameters(network.spec, state)).toBe(network.parameterCount());
    network.dispose();
  });

  it('refuses, before allocating it, a network past what an artifact may hold, naming the spec field', () => {
    const huge = specOf({ experts: 256, expertUnits: [65_536, 65_536] });
    expect(() => new MultiTaskNetwork(huge, state)).toThrow(SpecValidationError);
    expect(() => new MultiTaskNetwork(huge, state)).toThrow(
      /model: the network would have \d+ parameters, more than the 100000000 an artifact may hold/,
    );
  });

  it('refuses a stack of more than 32 layers when the spec is read', () => {
    expect(() => specOf({ expertUnits: Array(33).fill(1) })).toThrow(/model\.expertUnits: at most 32 layers/);
  });
});
