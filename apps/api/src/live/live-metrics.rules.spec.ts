import type { LabelledPrediction } from '@app/db';
import { Rng } from '@app/mmoe';

import { aucTest, windowAggregates } from './live-metrics.rules';

function rows(seed: number, versionId: number, n: number, separation: number): LabelledPrediction[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = rng.next() < 0.3 ? 1 : 0;
    return {
      requestId: `s${seed}-r${i >> 3}`,
      itemId: `i${i & 7}`,
      versionId,
      userId: `u${(i >> 3) % 40}`,
      loggedAt: new Date(0),
      scores: [1 / (1 + Math.exp(-(separation * label + rng.gaussian())))],
      labels: { click: label },
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
    const a = rows(1, 1, 800, 1);
    const same = aucTest(
      'click',
      { rows: a, taskIndex: 0 },
      { rows: a.map((r) => ({ ...r, versionId: 2 })), taskIndex: 0 },
    );
    expect(same).toMatchObject({ paired: true, count: 800, difference: 0, standardError: 0 });
    const better = a.map((r) => ({
      ...r,
      versionId: 2,
      scores: [r.labels.click ? r.scores[0] ** 0.5 : r.scores[0] ** 2],
    }));
    const paired = aucTest('click', { rows: a, taskIndex: 0 }, { rows: better, taskIndex: 0 });
    expect(paired.paired).toBe(true);
    expect(paired.difference!).toBeGreaterThan(0);
    expect(paired.pValue!).toBeLessThan(0.01);
  });

  it('compares the two arms of a split as independent samples, clustered by user', () => {
    const test = aucTest(
      'click',
      { rows: rows(2, 1, 800, 1), taskIndex: 0 },
      { rows: rows(3, 2, 800, 1), taskIndex: 0 },
    );
    expect(test).toMatchObject({ paired: false, count: 1600, clusters: expect.any(Number) });
    expect(test.clusters).toBeGreaterThan(20);
    expect(test.pValue!).toBeGreaterThan(0.01);
  });
});
