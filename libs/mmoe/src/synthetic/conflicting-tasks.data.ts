import { RawTable } from '../data/raw-table';
import { ModelSpec, ModelSpecInput } from '../model-spec/model-spec.schema';
import { Rng } from '../util/random';

/**
 * Two pairs of tasks built to pull a shared network apart, for comparing loss balancing methods:
 *
 * - `scale`: a rare purchase (about 2 % positives) beside a spend in money units (mean 500, std about 300). Their
 *   losses differ by an order of magnitude (the purchase's log loss about 0.1, the spend's squared error about 1 on
 *   standardised targets) and they read partly different features;
 * - `opposed`: a like and a skip driven by the same two features with opposite signs, plus one feature each: on a
 *   narrow shared layer their gradients point against each other.
 *
 * Items carry effects of their own (a categorical feature to embed). Seeds give independent worlds and samples.
 */
export type ConflictScenario = 'scale' | 'opposed';

export const CONFLICT_ITEMS = 200;

export const conflictFeatures: ModelSpecInput['features'] = [
  { name: 'item', type: 'categorical', embeddingDim: 4 },
  { name: 'x1', type: 'numeric' },
  { name: 'x2', type: 'numeric' },
  { name: 'x3', type: 'numeric' },
  { name: 'x4', type: 'numeric' },
];

export const conflictTasks: Record<ConflictScenario, ModelSpecInput['tasks']> = {
  scale: [
    { name: 'purchase', label: 'purchase', type: 'binary' },
    { name: 'spend', label: 'spend', type: 'regression' },
  ],
  opposed: [
    { name: 'like', label: 'like', type: 'binary' },
    { name: 'skip', label: 'skip', type: 'binary' },
  ],
};

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** `n` rows of the scenario in a world drawn from `worldSeed` (item effects), the rows from `seed`. */
export function sampleConflict(
  spec: ModelSpec,
  scenario: ConflictScenario,
  worldSeed: number,
  n: number,
  seed: number,
): RawTable {
  const world = new Rng(worldSeed);
  const itemA = Float64Array.from({ length: CONFLICT_ITEMS }, () => world.gaussian());
  const itemB = Float64Array.from({ length: CONFLICT_ITEMS }, () => world.gaussian());
  const rng = new Rng(seed);
  const table = new RawTable(spec);
  for (let r = 0; r < n; r++) {
    const item = rng.int(CONFLICT_ITEMS);
    const [x1, x2, x3, x4] = [rng.gaussian(), rng.gaussian(), rng.gaussian(), rng.gaussian()];
    const record: Record<string, string> = { item: `i${item}`, x1: `${x1}`, x2: `${x2}`, x3: `${x3}`, x4: `${x4}` };
    if (scenario === 'scale') {
      record.purchase = rng.next() < sigmoid(-4.6 + 1.2 * x1 + 0.6 * x3 + 0.8 * itemA[item]) ? '1' : '0';
      record.spend = `${500 + 300 * (0.7 * x2 - 0.5 * x1 + 0.5 * x4 + 0.4 * itemB[item]) + 60 * rng.gaussian()}`;
    } else {
      const shared = 1.2 * x1 - 0.8 * x2;
      record.like = rng.next() < sigmoid(shared + 0.8 * x3 + 0.6 * itemA[item]) ? '1' : '0';
      record.skip = rng.next() < sigmoid(-shared + 0.8 * x4 + 0.6 * itemB[item]) ? '1' : '0';
    }
    table.add(record);
  }
  return table;
}
