import { parseModelSpec, type ModelSpec } from '@app/mmoe';

/** A model shape of ../shared/bench/README.md (the PyTorch script's `--shape`). */
export interface BenchShape {
  name: 'reference' | 'census';
  categorical: number;
  vocab: number;
  embeddingDim: number;
  numeric: number;
  experts: number;
  expertUnits: number[];
  towerUnits: number[];
}

/** 8 categorical (vocab 1000, dim 16) + 16 numeric features → 8 experts [256, 128] → towers [64] → 2 binary tasks. */
export const REFERENCE_SHAPE: BenchShape = {
  name: 'reference',
  categorical: 8,
  vocab: 1000,
  embeddingDim: 16,
  numeric: 16,
  experts: 8,
  expertUnits: [256, 128],
  towerUnits: [64],
};

/** The MMoE paper's census-income model: 29 categorical (vocab 50, dim 4) + 10 numeric → 8 experts [16] → towers [8]. */
export const CENSUS_SHAPE: BenchShape = {
  name: 'census',
  categorical: 29,
  vocab: 50,
  embeddingDim: 4,
  numeric: 10,
  experts: 8,
  expertUnits: [16],
  towerUnits: [8],
};

export const BENCH_SHAPES = [REFERENCE_SHAPE, CENSUS_SHAPE] as const;

/** The reference MMoE, shared by bench:model and bench:serve. */
export const CATEGORICAL = REFERENCE_SHAPE.categorical;
export const VOCAB = REFERENCE_SHAPE.vocab;
export const NUMERIC = REFERENCE_SHAPE.numeric;

/** With `userSide`, the first half of each kind of feature is user-side (as bench:serve's user holds them). */
export function shapeSpec(shape: BenchShape, { userSide = false } = {}): ModelSpec {
  const side = (j: number, of: number) => (userSide && j < of / 2 ? { side: 'user' } : {});
  return parseModelSpec({
    features: [
      ...Array.from({ length: shape.categorical }, (_, j) => ({
        name: `c${j}`,
        type: 'categorical',
        embeddingDim: shape.embeddingDim,
        ...side(j, shape.categorical),
      })),
      ...Array.from({ length: shape.numeric }, (_, j) => ({
        name: `n${j}`,
        type: 'numeric',
        ...side(j, shape.numeric),
      })),
    ],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'like', label: 'like', type: 'binary' },
    ],
    model: {
      architecture: 'mmoe',
      experts: shape.experts,
      expertUnits: shape.expertUnits,
      towerUnits: shape.towerUnits,
    },
    training: { epochs: 1, batchSize: 512, learningRate: 0.001, seed: 1, earlyStoppingPatience: 0 },
  });
}

export function referenceSpec(options: { userSide?: boolean } = {}): ModelSpec {
  return shapeSpec(REFERENCE_SHAPE, options);
}
