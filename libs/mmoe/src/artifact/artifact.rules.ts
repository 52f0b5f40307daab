import { embeddingRows, type PreprocessingState } from '../data/preprocessor';
import type { ModelSpec } from '../model-spec/model-spec.schema';
import { topologyOf } from '../model/topology';
import { ArtifactError, type WeightEntry } from './artifact.codec';

// An artifact's header declares sizes (vocabularies, hash buckets, layer widths) that building its network turns
// into allocations. These rules check them against the weights actually present (which decodeArtifact has checked
// against the bytes and the configured limit) before the network is built, so that a small crafted file cannot make
// the process allocate gigabytes or block its event loop for seconds; each failure names the header field.

const isCount = (n: unknown, min: number): n is number => Number.isSafeInteger(n) && (n as number) >= min;

/**
 * The preprocessing state of the header, checked field by field, and the network the spec and it declare, checked
 * to need no more parameters than the artifact holds and to find each embedding table with its declared size.
 */
export function checkDeclaredNetwork(
  spec: ModelSpec,
  preprocessing: unknown,
  weights: WeightEntry[],
): PreprocessingState {
  const state = checkPreprocessing(preprocessing);
  const shapes = new Map(weights.map((w) => [w.name, w.shape]));
  let planned = 0;
  state.categorical.forEach((c, i) => {
    const rows = embeddingRows(c);
    const shape = shapes.get(`embedding/${c.name}`);
    if (shape?.join('x') !== `${rows}x${c.embeddingDim}`) {
      throw new ArtifactError(
        `artifact header field "preprocessing.categorical[${i}]" declares ${rows} rows × ${c.embeddingDim} for "${c.name}", ` +
          `but its weight "embedding/${c.name}" has shape ${shape ? `[${shape}]` : 'none'}`,
      );
    }
    planned += rows * c.embeddingDim;
  });
  planned += denseParameters(spec, state);
  const present = weights.reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1), 0);
  if (planned > present) {
    throw new ArtifactError(
      `artifact header field "spec.model" declares a network of ${planned} parameters, the artifact holds ${present}`,
    );
  }
  return state;
}

/** Parameters of the experts, gates, towers and task weighting, as MultiTaskNetwork lays them out. */
function denseParameters(spec: ModelSpec, state: PreprocessingState): number {
  const { expertCount, expertUnits, gates } = topologyOf(spec);
  const inputWidth = state.numeric.length + state.categorical.reduce((s, c) => s + c.embeddingDim, 0);
  const layers = (units: number[]) => units.slice(1).reduce((s, u, l) => s + (units[l] + 1) * u, 0);
  const noise = spec.model.gate.type === 'noisy-top-k' && spec.model.gate.noise ? 2 : 1;
  return (
    expertCount * layers([inputWidth, ...expertUnits]) +
    gates.reduce((s, g) => s + noise * (inputWidth + 1) * g.experts.length, 0) +
    spec.tasks.length * layers([expertUnits[expertUnits.length - 1], ...spec.model.towerUnits, 1]) +
    (spec.model.uncertaintyWeighting ? spec.tasks.length : 0)
  );
}

function checkPreprocessing(value: unknown): PreprocessingState {
  const state = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const list = (key: keyof PreprocessingState): Record<string, unknown>[] => {
    const items = state[key];
    if (!Array.isArray(items) || !items.every((item) => typeof item === 'object' && item !== null))
      throw new ArtifactError(`artifact header field "preprocessing.${key}" must be a list of objects`);
    return items as Record<string, unknown>[];
  };
  const fail = (field: string, what: string) => {
    throw new ArtifactError(`artifact header field "preprocessing.${field}" must be ${what}`);
  };
  list('numeric').forEach((n, i) => {
    if (typeof n.name !== 'string') fail(`numeric[${i}].name`, 'a string');
    if (!Number.isFinite(n.mean)) fail(`numeric[${i}].mean`, 'a finite number');
    if (!Number.isFinite(n.std) || (n.std as number) <= 0) fail(`numeric[${i}].std`, 'a positive number');
  });
  list('categorical').forEach((c, i) => {
    if (typeof c.name !== 'string') fail(`categorical[${i}].name`, 'a string');
    if (!isCount(c.embeddingDim, 1)) fail(`categorical[${i}].embeddingDim`, 'a positive integer');
    if ('vocab' in c) {
      if (!Array.isArray(c.vocab) || !c.vocab.every((v) => typeof v === 'string'))
        fail(`categorical[${i}].vocab`, 'a list of strings');
    } else if (!isCount(c.hashBuckets, 1)) fail(`categorical[${i}].hashBuckets`, 'a positive integer (or a vocab)');
  });
  list('labels').forEach((l, i) => {
    if (typeof l.task !== 'string') fail(`labels[${i}].task`, 'a string');
    if (!Number.isFinite(l.mean)) fail(`labels[${i}].mean`, 'a finite number');
    if (!Number.isFinite(l.std)) fail(`labels[${i}].std`, 'a finite number');
  });
  return value as PreprocessingState;
}
