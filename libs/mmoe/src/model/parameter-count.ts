import { embeddingRows, type PreprocessingState } from '../data/preprocessor';
import { attentionLayers } from '../features/sequence.feature';
import { lossBalancingOf, type ModelSpec } from '../model-spec/model-spec.schema';
import { relationLayers, topologyOf, towerWidths, type Topology } from './topology';

/** Parameters of the network `spec` and `state` declare: embedding tables, then the dense part. */
export function plannedParameters(spec: ModelSpec, state: PreprocessingState): number {
  const own = state.sequence.filter((s) => !('sharedEmbedding' in s));
  return (
    [...state.categorical, ...own].reduce(
      (sum, table) => sum + embeddingRows(table as Parameters<typeof embeddingRows>[0]) * table.embeddingDim,
      0,
    ) + denseParameters(spec, state)
  );
}

/** Parameters of the experts, gates, towers and task weighting, as MultiTaskNetwork lays them out. */
export function denseParameters(spec: ModelSpec, state: PreprocessingState): number {
  const topology = topologyOf(spec);
  const { experts, expertUnits, gates } = topology;
  const inputWidth = [...state.categorical, ...state.sequence].reduce(
    (s, c) => s + c.embeddingDim,
    state.numeric.length,
  );
  const expertOut = expertUnits[expertUnits.length - 1];
  const widthOf = (source: number | undefined) => (source === undefined ? inputWidth : expertOut);
  const layers = (units: number[]) => units.slice(1).reduce((s, u, l) => s + (units[l] + 1) * u, 0);
  const noise = spec.model.gate.type === 'noisy-top-k' && spec.model.gate.noise ? 2 : 1;
  return (
    state.sequence.reduce((s, f) => s + (f.attention ? layers(attentionLayers(f)) : 0), 0) +
    experts.reduce((s, e) => s + layers([widthOf(e.input), ...expertUnits]), 0) +
    gates.reduce((s, g) => s + noise * (widthOf(g.input) + 1) * g.experts.length, 0) +
    spec.tasks.reduce((s, _, t) => s + towerParameters(spec, topology, t), 0) +
    (lossBalancingOf(spec).method === 'uncertainty' ? spec.tasks.length : 0)
  );
}

/** A tower's own layers, attention transfer (AITM), relation layers (DBMTL) and output layer. */
function towerParameters(spec: ModelSpec, topology: Topology, t: number): number {
  const layers = (units: number[]) => units.slice(1).reduce((s, u, l) => s + (units[l] + 1) * u, 0);
  const widths = towerWidths(spec, topology);
  const { transferFrom, related } = topology.towers[t];
  return (
    layers([topology.expertUnits.at(-1)!, ...spec.model.towerUnits]) +
    (transferFrom === undefined ? 0 : (widths.representation[transferFrom] + 1 + 3 * widths.own) * widths.own) +
    (related.length === 0 ? 0 : layers(relationLayers(spec, topology, t))) +
    widths.representation[t] +
    1
  );
}
