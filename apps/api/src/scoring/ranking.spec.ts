import type { ScoreResult } from '@app/mmoe/serving';
import type { CompiledFusion } from '@app/registry';

import { rank, sortByScore } from './ranking';

describe('sortByScore', () => {
  it('orders by score, highest first, ties in their given order, as a stable sort does', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648);
    for (let round = 0; round < 200; round++) {
      const size = Math.floor(random() * 1100);
      // Every third round draws scores from five values: long runs of ties.
      const score = Float64Array.from({ length: size }, () => (round % 3 === 0 ? Math.floor(random() * 5) : random()));
      const order = Uint32Array.from({ length: size }, (_, i) => i);
      const expected = [...order].sort((a, b) => score[b] - score[a] || a - b);
      sortByScore(order, score);
      expect([...order]).toEqual(expected);
    }
  });
});

describe('rank', () => {
  it('puts items whose score is NaN last, in request order, the others ranked as usual', () => {
    const fused = Float64Array.from([0.2, Number.NaN, 0.9, Number.NaN, 0.5]);
    const fusion = { fuse: () => fused } as unknown as CompiledFusion;
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const { order } = rank(ids, new Uint8Array(5), { scores: [] } as unknown as ScoreResult, fusion);
    expect([...order].map((i) => ids[i])).toEqual(['c', 'e', 'a', 'b', 'd']);
  });
});
