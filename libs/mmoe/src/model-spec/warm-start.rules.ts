import { SEQUENCE_MAX_VOCAB, type PreprocessingState } from '../data/preprocessor';
import {
  DEFAULT_ATTENTION_UNITS,
  DEFAULT_EMBEDDING_DIM,
  lossBalancingOf,
  type FeatureSpec,
  type ModelSpec,
  type TaskSpec,
} from './model-spec.schema';

/**
 * What a warm start may change and what it may not: every weight of the parent must mean the same in the child.
 * Features, tasks and the network's shape must match; what only steers training (the `training` section but
 * uncertainty weighting, task weights, labels and calibrator weights, a sequence's maxLength and separator, gate
 * dropout, minCount) and a larger maxVocab may differ.
 */
export class IncompatibleParentError extends Error {
  constructor(readonly differences: string[]) {
    super(
      `the spec cannot warm-start from its parent (${differences.length} difference${differences.length === 1 ? '' : 's'}):\n` +
        differences.map((d) => `  - ${d}`).join('\n'),
    );
    this.name = 'IncompatibleParentError';
  }
}

/** Every difference between the parent and the child that would change what a parent weight means; [] when none. */
export function warmStartDifferences(parent: ModelSpec, parentState: PreprocessingState, child: ModelSpec): string[] {
  return [
    ...listDifferences('features', parent.features, child.features, (p, c, at) =>
      featureDifferences(p, c, parentState, at),
    ),
    ...listDifferences('tasks', parent.tasks, child.tasks, taskDifferences),
    ...modelDifferences(parent.model, child.model),
    ...uncertaintyDifference(parent, child),
  ];
}

/** Both lists matched by name, in order: a missing, added or moved entry is a difference, as is any compared key. */
function listDifferences<T extends { name: string }>(
  what: string,
  parent: readonly T[],
  child: readonly T[],
  compare: (p: T, c: T, at: string) => string[],
): string[] {
  const out: string[] = [];
  const childNames = new Set(child.map((c) => c.name));
  const parentNames = new Set(parent.map((p) => p.name));
  for (const p of parent) if (!childNames.has(p.name)) out.push(`${what}: "${p.name}" is in the parent, not here`);
  child.forEach((c, i) => {
    if (!parentNames.has(c.name)) out.push(`${what}[${i}]: "${c.name}" is new (the parent has no weights for it)`);
  });
  const common = child.filter((c) => parentNames.has(c.name));
  const parentOrder = parent.filter((p) => childNames.has(p.name));
  common.forEach((c, i) => {
    const at = `${what}[${child.indexOf(c)}] "${c.name}"`;
    if (parentOrder[i].name !== c.name) out.push(`${at}: is at another position than in the parent`);
    else out.push(...compare(parentOrder[i], c, at));
  });
  return out;
}

/** A table's width as trained: the default spelt out; none for a plain numeric or a list on another's table. */
function embeddingDimOf(f: FeatureSpec): number | undefined {
  if (f.type === 'numeric') return f.buckets === undefined ? undefined : (f.embeddingDim ?? DEFAULT_EMBEDDING_DIM);
  if (f.type === 'sequence') return f.sharedEmbedding ? undefined : (f.embeddingDim ?? DEFAULT_EMBEDDING_DIM);
  return f.embeddingDim;
}

function featureDifferences(p: FeatureSpec, c: FeatureSpec, state: PreprocessingState, at: string): string[] {
  if (p.type !== c.type) return [`${at}: type is "${p.type}" in the parent, "${c.type}" here`];
  const out = keyDifferences({ ...p, embeddingDim: embeddingDimOf(p) }, { ...c, embeddingDim: embeddingDimOf(c) }, at, [
    'embeddingDim',
    'hashBuckets',
    'transform',
    'buckets',
    'pooling',
  ]);
  if (c.type === 'sequence' || c.type === 'categorical') {
    // The attention unit's layers compared as trained (its default spelt out).
    const table = (f: FeatureSpec) =>
      f.type !== 'sequence'
        ? {}
        : {
            sharedEmbedding: f.sharedEmbedding,
            target: f.target,
            attentionUnits: f.pooling === 'attention' ? (f.attentionUnits ?? DEFAULT_ATTENTION_UNITS) : undefined,
          };
    out.push(...keyDifferences(table(p), table(c), at, ['sharedEmbedding', 'target', 'attentionUnits']));
    const grown = [...state.categorical, ...state.sequence].find((s) => s.name === c.name);
    const maxVocab = c.maxVocab ?? SEQUENCE_MAX_VOCAB;
    if (grown && 'vocab' in grown && grown.vocab.length > maxVocab)
      out.push(
        `${at}: maxVocab ${maxVocab} is below the ${grown.vocab.length} ids the parent learnt (ids are never dropped)`,
      );
  }
  return out;
}

/** What a task's weights are: its type, and the towers it reads (ESMM's parent, AITM's transfer, DBMTL's relations). */
function taskDifferences(p: TaskSpec, c: TaskSpec, at: string): string[] {
  return keyDifferences(p, c, at, ['type', 'conditionalOn', 'dependsOn', 'relatedTasks']);
}

/** Uncertainty weighting learns one weight per task; the other balancing methods only weigh the losses. */
function uncertaintyDifference(parent: ModelSpec, child: ModelSpec): string[] {
  const learnt = (spec: ModelSpec) => lossBalancingOf(spec).method === 'uncertainty';
  if (learnt(parent) === learnt(child)) return [];
  const state = (on: boolean) => (on ? 'on' : 'off');
  return [
    `training.lossBalancing: uncertainty weighting (learnt task weights) is ${state(learnt(parent))} in the parent, ${state(learnt(child))} here`,
  ];
}

/**
 * The network's shape and what its weights compute, as its architecture builds it (topology.ts): defaults spelt out
 * (PLE's one level, shared-bottom's layers), keys it does not read left out (the experts and gate of shared-bottom,
 * the task experts of MMoE); gate dropout and the balance loss weigh only in training, and uncertainty weighting is
 * compared with its training spelling.
 */
function modelDifferences(p: ModelSpec['model'], c: ModelSpec['model']): string[] {
  const shape = (m: ModelSpec['model']) => {
    const gate: Record<string, unknown> = { ...m.gate };
    delete gate.dropout;
    delete gate.balanceLossWeight;
    const shape: Record<string, unknown> = { ...m, gate };
    delete shape.uncertaintyWeighting; // compared with its training spelling (uncertaintyDifference)
    // CGC is PLE's one level: the same network.
    if (m.architecture === 'ple' || m.architecture === 'cgc')
      Object.assign(shape, { architecture: 'ple', levels: m.levels ?? 1 });
    else delete shape.taskExperts;
    if (m.architecture === 'shared-bottom') {
      shape.bottomUnits = m.bottomUnits ?? m.expertUnits;
      for (const unread of ['expertUnits', 'experts', 'gate']) delete shape[unread];
    } else delete shape.bottomUnits;
    return shape;
  };
  const [ps, cs] = [shape(p), shape(c)];
  const keys = [...new Set([...Object.keys(ps), ...Object.keys(cs)])] as (keyof typeof ps)[];
  return keyDifferences(ps, cs, 'model', keys);
}

/** `at` names the object: `features[1] "age"` reads "features[1] "age": key is …", `model` reads "model.key is …". */
function keyDifferences<T extends object>(p: T, c: T, at: string, keys: readonly PropertyKey[]): string[] {
  const label = (key: PropertyKey) => (at === 'model' ? `model.${String(key)}` : `${at}: ${String(key)}`);
  return keys.flatMap((key) => {
    const [a, b] = [(p as Record<PropertyKey, unknown>)[key], (c as Record<PropertyKey, unknown>)[key]];
    return JSON.stringify(a) === JSON.stringify(b)
      ? []
      : [`${label(key)} is ${show(a)} in the parent, ${show(b)} here`];
  });
}

function show(value: unknown): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}
