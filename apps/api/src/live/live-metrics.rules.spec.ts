import type { TaskObservation } from '@app/db';
import { Rng } from '@app/mmoe';

import { aucTest, windowAggregates } from './live-metrics.rules';

function rows(seed: number, n: number, separation: number): TaskObservation[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = rng.next() < 0.3 ? 1 : 0;
    return {
      requestId: `s${seed}-r${i >> 3}`,
      itemId: `i${i & 7}`,
      userId: `u${(i >> 3) % 40}`,
      score: 1 / (1 + Math.exp(-(separation * label + rng.gaussian()))),
      label,
    };
  });
}

describe('live metrics rules', () => {
  it('answers a window from the finest aggregates that cover it, from the start of the period holding its start', () => {
    const now = new Date('2026-12-05T12:34:56Z');
    const ago = (ms: number) => new Date(now.getTime() - ms);
    expect(windowAggregates(ago(30 * 60_000), now)).toEqual({
      granularity: 'minute',
      from: new Date('2026-12-05T12:04:00Z'),
    });
    expect(windowAggregates(ago(6 * 3_600_000), now)).toEqual({
      granularity: 'hour',
      from: new Date('2026-12-05T06:00:00Z'),
    });
    expect(windowAggregates(ago(7 * 86_400_000), now)).toEqual({
      granularity: 'day',
      from: new Date('2026-11-28T00:00:00Z'),
    });
  });

  it('pairs two versions that scored the same predictions: one scorer against itself differs by exactly 0', () => {
    const a = rows(1, 800, 1);
    expect(aucTest(a, a)).toMatchObject({ paired: true, count: 800, difference: 0, standardError: 0 });
    const better = a.map((r) => ({ ...r, score: r.label ? r.score ** 0.5 : r.score ** 2 }));
    const paired = aucTest(a, better);
    expect(paired.paired).toBe(true);
    expect(paired.difference!).toBeGreaterThan(0);
    expect(paired.pValue!).toBeLessThan(0.01);
  });

  it('compares the two arms of a split as independent samples, clustered by user', () => {
    const test = aucTest(rows(2, 800, 1), rows(3, 800, 1));
    expect(test).toMatchObject({ paired: false, count: 1600, clusters: expect.any(Number) });
    expect(test.clusters).toBeGreaterThan(20);
    expect(test.pValue!).toBeGreaterThan(0.01);
  });
});
