import { growPreprocessing, type VocabularyGrowth } from '../data/preprocessor';
import type { RawTable } from '../data/raw-table';
import type { ModelSpec } from '../model-spec/model-spec.schema';
import { IncompatibleParentError, warmStartDifferences } from '../model-spec/warm-start.rules';
import { AdamState, MultiTaskNetwork } from './network';

/**
 * A network for `spec` that starts where `parent` ended: the parent's preprocessing with its vocabularies grown by
 * the ids of `rows` (growPreprocessing), every weight the parent's, and the rows of new ids freshly initialised as a
 * new network's embeddings are; with `continueOptimizer`, also the parent's kept Adam state (optimizerState) grown
 * alike, for TrainOptions.optimizer. An incompatible spec is refused before anything is allocated, with every
 * difference. The parent is only read.
 */
export function warmStartNetwork(
  parent: MultiTaskNetwork,
  spec: ModelSpec,
  table: RawTable,
  rows?: Uint32Array,
  { continueOptimizer = false } = {},
): { network: MultiTaskNetwork; growth: VocabularyGrowth[]; optimizer?: AdamState } {
  const differences = warmStartDifferences(parent.spec, parent.preprocessing, spec);
  if (differences.length > 0) throw new IncompatibleParentError(differences);
  const { state, growth } = growPreprocessing(parent.preprocessing, spec, table, rows);
  const network = new MultiTaskNetwork(spec, state);
  try {
    const weights = network.snapshot();
    for (const [name, learnt] of parent.snapshot()) {
      const values = weights.get(name);
      // Only an embedding may be longer than the parent's (its new rows after the old ones); the rules exclude the rest.
      if (
        !values ||
        learnt.length > values.length ||
        (!name.startsWith('embedding/') && learnt.length !== values.length)
      )
        throw new Error(`warm start: weight "${name}" of the parent does not fit the child`);
      values.set(learnt);
    }
    network.restore(weights);
    const optimizer = continueOptimizer && parent.optimizerState && grownState(parent.optimizerState, weights);
    return { network, growth, ...(optimizer && { optimizer }) };
  } catch (e) {
    network.dispose();
    throw e;
  }
}

/**
 * A parent's Adam state laid out as the child's weights: the new rows of a grown embedding start at zero moments. A
 * weight that did not grow shares the parent's arrays rather than copy them: a start state is only read (the
 * optimizer lays it out anew), and a refit's state is twice its weights.
 */
function grownState({ step, first, second }: AdamState, weights: Map<string, Float32Array>): AdamState {
  const grown = (moments: Map<string, Float32Array>) =>
    new Map(
      [...weights].map(([name, values]) => {
        const learnt = moments.get(name)!;
        if (learnt.length === values.length) return [name, learnt];
        const out = new Float32Array(values.length);
        out.set(learnt);
        return [name, out];
      }),
    );
  return { step, first: grown(first), second: grown(second) };
}
