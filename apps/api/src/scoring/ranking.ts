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
  // An item whose score is NaN (its inputs overflowed the network's float32) goes last, in request order: NaN compares
  // false with everything, so the sort would leave it wherever it stood, first included.
  let scored = 0;
  for (let i = 0; i < size; i++) if (fused[i] === fused[i]) order[scored++] = i;
  for (let i = 0, last = scored; last < size; i++) if (fused[i] !== fused[i]) order[last++] = i;
  sortByScore(order, fused, scored);
  return { itemIds, order, fused, result, unknown };
}

/** sortByScore's other half, reused: TypedArray#sort with a comparator copied the array twice a call (~8 KB). */
let scratch = new Uint32Array(1024);
/** Runs this short are sorted by insertion before merging. */
const RUN = 16;

/**
 * Sorts the first `size` indices by score, highest first, ties in their given order (stable): a bottom-up merge sort
 * between `order` and a reused scratch array, so that nothing is allocated per request.
 */
export function sortByScore(order: Uint32Array, score: Float64Array, size = order.length): void {
  if (scratch.length < size) scratch = new Uint32Array(size);
  for (let start = 0; start < size; start += RUN) {
    const end = Math.min(start + RUN, size);
    for (let i = start + 1; i < end; i++) {
      const index = order[i];
      let j = i - 1;
      for (; j >= start && score[order[j]] < score[index]; j--) order[j + 1] = order[j];
      order[j + 1] = index;
    }
  }
  let from: Uint32Array = order;
  let to: Uint32Array = scratch;
  for (let width = RUN; width < size; width *= 2) {
    for (let left = 0; left < size; left += 2 * width) {
      const middle = Math.min(left + width, size);
      const end = Math.min(left + 2 * width, size);
      let i = left;
      let j = middle;
      let k = left;
      // The right run's item goes first only when it scores strictly higher: ties keep their order.
      while (i < middle && j < end) to[k++] = score[from[j]] > score[from[i]] ? from[j++] : from[i++];
      while (i < middle) to[k++] = from[i++];
      while (j < end) to[k++] = from[j++];
    }
    const merged = to;
    to = from;
    from = merged;
  }
  if (from !== order) for (let i = 0; i < size; i++) order[i] = from[i];
}
