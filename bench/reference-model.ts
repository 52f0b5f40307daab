import { parseModelSpec, type ModelSpec } from '@app/mmoe';

/** The reference MMoE of ../shared/bench/README.md, shared by bench:model and bench:serve. */
export const CATEGORICAL = 8;
export const VOCAB = 1000;
export const NUMERIC = 16;

/** 8 categorical (vocab 1000, dim 16) + 16 numeric features → 8 experts [256, 128] → towers [64] → 2 binary tasks. */
export function referenceSpec(): ModelSpec {
  return parseModelSpec({
    features: [
      ...Array.from({ length: CATEGORICAL }, (_, j) => ({ name: `c${j}`, type: 'categorical', embeddingDim: 16 })),
      ...Array.from({ length: NUMERIC }, (_, j) => ({ name: `n${j}`, type: 'numeric' })),
    ],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'like', label: 'like', type: 'binary' },
    ],
    model: { architecture: 'mmoe', experts: 8, expertUnits: [256, 128], towerUnits: [64] },
    training: { epochs: 1, batchSize: 512, learningRate: 0.001, seed: 1, earlyStoppingPatience: 0 },
  });
}
