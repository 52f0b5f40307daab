import type { ScoreResult } from '@app/mmoe/serving';
import type { CompiledFusion } from '@app/registry';

/**
 * One scored request's ranking, by column: what the response is written from (score-response.serializer.ts) and what
 * the prediction log keeps. Nothing is built per item on the request path: an object per item and per item's scores
 * was most of a 500-candidate request's garbage (the scavenges it costs are part of the tail).
 */
export interface Ranking {
  /** The request's candidates, in request order; every column below is in that order. */
  itemIds: readonly string[];
  /** Indices into itemIds, highest fused score first (ties keep request order). */
  order: Uint32Array;
  /** The fused score of each item. */
  fused: Float64Array;
  /** The engine's scores (per task; conditional and gate weights when present). */
  result: ScoreResult;
  /** 1 for an item stored nowhere (scored with defaults, flagged unknown). */
  unknown: Uint8Array;
}

/** Ranks the candidates by `fusion` of their task scores. */
export function rank(
  itemIds: readonly string[],
  unknown: Uint8Array,
  result: ScoreResult,
  fusion: CompiledFusion,
): Ranking {
  const size = itemIds.length;
  const fused = fusion.fuse(result.scores, size);
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  // TypedArray#sort is stable: ties keep request order. The comparator answers -1 / 0 / 1 rather than the difference,
  // a double that V8 would box on every one of a sort's thousands of comparisons.
  order.sort((a, b) => (fused[a] < fused[b] ? 1 : fused[a] > fused[b] ? -1 : 0));
  return { itemIds, order, fused, result, unknown };
}
