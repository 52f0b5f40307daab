import { CanaryTraffic } from '../synthetic/canary-traffic.data';
import { Rng } from '../util/random';
import { clusteredAuc, clusteredAucCovariance, clusteredLogRatio } from './clustered-auc';
import { delongAuc } from './delong';
import { auc } from './metrics';
import { BinaryAggregate, BINS_PER_LOGIT, LOGIT_RANGE, userCluster } from './task-aggregate';

/** A probability at the centre of score bin b: binning it loses nothing. */
const centreOf = (b: number) => 1 / (1 + Math.exp(-((b + 0.5) / BINS_PER_LOGIT - LOGIT_RANGE)));

/** Obuchowski's estimator by its definition, O(m·n), from (cluster, score, label) triples. */
function bruteForce(rows: { k: number; s: number; y: number }[]): { auc: number; variance: number } {
  const pos = rows.filter((r) => r.y === 1);
  const neg = rows.filter((r) => r.y === 0);
  const psi = (x: number, y: number) => (x > y ? 1 : x === y ? 0.5 : 0);
  const clusters = [...new Set(rows.map((r) => r.k))];
  const M = pos.length;
  const N = neg.length;
  const A = pos.reduce((s, p) => s + neg.reduce((t, q) => t + psi(p.s, q.s), 0), 0) / (M * N);
  let s10 = 0;
  let s01 = 0;
  let s11 = 0;
  for (const k of clusters) {
    const pk = pos.filter((r) => r.k === k);
    const nk = neg.filter((r) => r.k === k);
    const X = pk.reduce((s, p) => s + neg.reduce((t, q) => t + psi(p.s, q.s), 0) / N, 0);
    const Y = nk.reduce((s, q) => s + pos.reduce((t, p) => t + psi(p.s, q.s), 0) / M, 0);
    s10 += (X - pk.length * A) ** 2;
    s01 += (Y - nk.length * A) ** 2;
    s11 += (X - pk.length * A) * (Y - nk.length * A);
  }
  const K = clusters.length;
  const f = K / (K - 1);
  return { auc: A, variance: (f * s10) / (M * M) + (f * s01) / (N * N) + (2 * f * s11) / (M * N) };
}

describe('clustered AUC', () => {
  const rng = new Rng(3);
  const rows = Array.from({ length: 400 }, () => {
    const k = rng.int(12);
    const y = rng.next() < 0.3 + 0.03 * k ? 1 : 0;
    // Cluster effects and ties: scores on a coarse grid of bin centres.
    return { k, y, s: 360 + 4 * Math.round(3 * y + k / 3 + 2 * rng.gaussian()) };
  });
  const aggregate = new BinaryAggregate(16);
  for (const r of rows) aggregate.add(r.k, centreOf(r.s), r.y);

  it('is Obuchowski’s estimator, ties within a bin counted ½', () => {
    const expected = bruteForce(rows);
    const c = clusteredAuc(aggregate);
    expect(c.auc).toBeCloseTo(expected.auc, 12);
    expect(c.auc).toBeCloseTo(
      auc(
        rows.map((r) => r.s),
        rows.map((r) => r.y),
      ),
      12,
    );
    expect(c.variance).toBeCloseTo(expected.variance, 14);
    expect(c).toMatchObject({ clusters: 12, positives: rows.filter((r) => r.y).length });
  });

  it('gives DeLong’s variance as its independent-predictions variance', () => {
    const delong = delongAuc(
      rows.map((r) => r.s),
      rows.map((r) => r.y),
    );
    expect(clusteredAuc(aggregate).iidVariance).toBeCloseTo(delong.variance, 14);
  });

  it('has no estimate with one class, and no variance with one cluster', () => {
    const one = new BinaryAggregate(4);
    one.add(0, 0.3, 1);
    expect(clusteredAuc(one).auc).toBeNaN();
    one.add(0, 0.2, 0);
    expect(clusteredAuc(one).auc).toBe(1);
    expect(clusteredAuc(one).variance).toBeNaN();
  });

  it('measures the same predictions scored twice with zero variance of their difference', () => {
    const c = clusteredAuc(aggregate);
    expect(c.variance + c.variance - 2 * clusteredAucCovariance(c, c)).toBeCloseTo(0, 14);
  });

  it('matches the AUC’s real variance across populations of users, where DeLong’s is far too small', () => {
    // 200 independent worlds of 100 users with strong user effects; the spread of their AUCs is the truth.
    const aucs: number[] = [];
    const clustered: number[] = [];
    const iid: number[] = [];
    for (let world = 0; world < 200; world++) {
      const traffic = new CanaryTraffic(
        { users: 100, canaryPercent: 0, userSd: 1.2, tasteSd: 1, itemsPerRequest: 10, seed: 1000 + world },
        { production: { userError: 0.5, noise: 1 }, canary: { userError: 0.5, noise: 1 } },
      );
      const a = new BinaryAggregate(64);
      const clusters = traffic.userIds.map((id) => userCluster(id, 64));
      for (let r = 0; r < 200; r++) {
        const user = traffic.next();
        for (let j = 0; j < 10; j++) a.add(clusters[user], traffic.scores[j], traffic.labels[j]);
      }
      const c = clusteredAuc(a);
      aucs.push(c.auc);
      clustered.push(c.variance);
      iid.push(c.iidVariance);
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const m = mean(aucs);
    const actual = aucs.reduce((s, x) => s + (x - m) ** 2, 0) / (aucs.length - 1);
    expect(mean(clustered) / actual).toBeGreaterThan(0.75);
    expect(mean(clustered) / actual).toBeLessThan(1.33);
    expect(mean(iid) / actual).toBeLessThan(0.5);
  });

  it('gives the log of a ratio of cluster totals with its delta-method variance', () => {
    const num = [1, 2, 3, 4];
    const den = [2, 2, 2, 2];
    const r = clusteredLogRatio(num, den);
    expect(r.estimate).toBeCloseTo(Math.log(10 / 8), 12);
    const ss = num.reduce((s, x, k) => s + (x / 10 - den[k] / 8) ** 2, 0);
    expect(r.variance).toBeCloseTo((4 / 3) * ss, 14);
    expect(clusteredLogRatio([1], [1]).variance).toBeNaN();
  });
});
