import { embeddingRows, type PreprocessingState } from '../data/preprocessor';
import { MAX_NUMBER_MAGNITUDE } from '../data/row-error';
import { type ModelSpec } from '../model-spec/model-spec.schema';
import { denseParameters } from '../model/parameter-count';
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
  checkCoversSpec(spec, state);
  const shapes = new Map(weights.map((w) => [w.name, w.shape]));
  let planned = 0;
  /** An embedding of the header must be present with the size it declares. */
  const table = (field: string, c: { name: string; embeddingDim: number } & Parameters<typeof embeddingRows>[0]) => {
    const rows = embeddingRows(c);
    const shape = shapes.get(`embedding/${c.name}`);
    if (shape?.join('x') !== `${rows}x${c.embeddingDim}`) {
      throw new ArtifactError(
        `artifact header field "preprocessing.${field}" declares ${rows} rows × ${c.embeddingDim} for "${c.name}", ` +
          `but its weight "embedding/${c.name}" has shape ${shape ? `[${shape}]` : 'none'}`,
      );
    }
    planned += rows * c.embeddingDim;
  };
  state.categorical.forEach((c, i) => table(`categorical[${i}]`, c));
  state.sequence.forEach((s, i) => {
    if ('sharedEmbedding' in s) {
      const shared = state.categorical.find((c) => c.name === s.sharedEmbedding);
      if (shared?.embeddingDim !== s.embeddingDim)
        throw new ArtifactError(
          `artifact header field "preprocessing.sequence[${i}].sharedEmbedding" must name a categorical feature of embeddingDim ${s.embeddingDim}`,
        );
      return;
    }
    table(`sequence[${i}]`, s);
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

/**
 * A label's mean or deviation, fitted on labels within ±MAX_NUMBER_MAGNITUDE (a larger one's float32 square overflows
 * the loss: no model trained on it), is within it too. Beyond it, an uploaded artifact's label scale made every
 * regression score infinite (served as null).
 */
const isStatistic = (value: unknown): boolean => typeof value === 'number' && Math.abs(value) <= MAX_NUMBER_MAGNITUDE;
const STATISTIC = `a number within ±${MAX_NUMBER_MAGNITUDE.toExponential().replace('+', '')}`;

/**
 * The preprocessing must be the spec's: a state for each of its features and nothing else (the network reads its
 * inputs by the state's names, the API assembles them by the spec's), and a label state per task, in the spec's order
 * (the heads read them by index), each with a positive deviation.
 */
function checkCoversSpec(spec: ModelSpec, state: PreprocessingState): void {
  const names = (list: { name: string }[]) => list.map((f) => f.name).sort();
  const declared = names([...state.numeric, ...state.categorical, ...state.sequence]);
  const features = names(spec.features);
  if (declared.join('\u0000') !== features.join('\u0000'))
    throw new ArtifactError(
      `artifact header field "preprocessing" covers the features ${JSON.stringify(declared)}, its spec declares ${JSON.stringify(features)}`,
    );
  if (state.labels.length !== spec.tasks.length || state.labels.some((l, t) => l.task !== spec.tasks[t].name))
    throw new ArtifactError(
      `artifact header field "preprocessing.labels" must hold the tasks ${JSON.stringify(spec.tasks.map((t) => t.name))} in that order`,
    );
  state.labels.forEach((l, t) => {
    if (!(l.std > 0))
      throw new ArtifactError(`artifact header field "preprocessing.labels[${t}].std" must be positive`);
  });
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
    // No bound beyond finite: a standardised input is bounded at serving (MAX_STANDARDISED), and models trained
    // before ±1e18 was enforced on values read (ns timestamps, 1.7e18) must still load.
    if (!Number.isFinite(n.mean)) fail(`numeric[${i}].mean`, 'a finite number');
    if (!Number.isFinite(n.std) || (n.std as number) <= 0) fail(`numeric[${i}].std`, 'a positive number');
    if (n.transform !== undefined && n.transform !== 'log1p') fail(`numeric[${i}].transform`, '"log1p" or absent');
  });
  list('categorical').forEach((c, i) => {
    if (typeof c.name !== 'string') fail(`categorical[${i}].name`, 'a string');
    if (!isCount(c.embeddingDim, 1)) fail(`categorical[${i}].embeddingDim`, 'a positive integer');
    if ('vocab' in c) {
      if (!Array.isArray(c.vocab) || !c.vocab.every((v) => typeof v === 'string'))
        fail(`categorical[${i}].vocab`, 'a list of strings');
    } else if ('buckets' in c) {
      const b = c.buckets;
      if (!Array.isArray(b) || b.length === 0 || !b.every((v, j) => Number.isFinite(v) && (j === 0 || v > b[j - 1])))
        fail(`categorical[${i}].buckets`, 'a non-empty, strictly increasing list of finite numbers');
    } else if (!isCount(c.hashBuckets, 1))
      fail(`categorical[${i}].hashBuckets`, 'a positive integer (or a vocab or buckets)');
  });
  list('sequence').forEach((s, i) => {
    if (typeof s.name !== 'string') fail(`sequence[${i}].name`, 'a string');
    if (typeof s.separator !== 'string') fail(`sequence[${i}].separator`, 'a string');
    if (!isCount(s.embeddingDim, 1)) fail(`sequence[${i}].embeddingDim`, 'a positive integer');
    if (!isCount(s.maxLength, 1) || (s.maxLength as number) > 1024)
      fail(`sequence[${i}].maxLength`, 'an integer in 1..1024');
    if (!['mean', 'sum', 'max', 'attention'].includes(s.pooling as string))
      fail(`sequence[${i}].pooling`, '"mean", "sum", "max" or "attention"');
    if (s.pooling === 'attention') {
      const attention = (s.attention ?? {}) as Record<string, unknown>;
      if (typeof attention.target !== 'string' || attention.target !== s.sharedEmbedding)
        fail(`sequence[${i}].attention.target`, 'the name of the categorical feature whose table it shares');
      const units = attention.units;
      if (!Array.isArray(units) || units.length === 0 || !units.every((u) => isCount(u, 1)))
        fail(`sequence[${i}].attention.units`, 'a non-empty list of positive integers');
    }
    if ('vocab' in s) {
      if (!Array.isArray(s.vocab) || !s.vocab.every((v) => typeof v === 'string'))
        fail(`sequence[${i}].vocab`, 'a list of strings');
    } else if ('sharedEmbedding' in s) {
      if (typeof s.sharedEmbedding !== 'string') fail(`sequence[${i}].sharedEmbedding`, 'a string');
    } else if (!isCount(s.hashBuckets, 1))
      fail(`sequence[${i}].hashBuckets`, 'a positive integer (or a vocab or a sharedEmbedding)');
  });
  list('labels').forEach((l, i) => {
    if (typeof l.task !== 'string') fail(`labels[${i}].task`, 'a string');
    if (!isStatistic(l.mean)) fail(`labels[${i}].mean`, STATISTIC);
    if (!isStatistic(l.std)) fail(`labels[${i}].std`, STATISTIC);
  });
  return value as PreprocessingState;
}
