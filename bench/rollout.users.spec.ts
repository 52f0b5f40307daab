import { BinaryAggregate, CanaryTraffic, clusteredAuc, gauc, Rng } from '@app/mmoe';

import { StreamingBootstrap, UserHistograms } from './rollout.users';

describe('UserHistograms.gauc', () => {
  it('is the per-user AUC weighted by impressions, skipping users with one label, as gauc() computes it', () => {
    // Scores a logit apart: every prediction in its own bin, so the binned AUC is the exact one.
    const p = (logit: number) => 1 / (1 + Math.exp(-logit));
    const rows = [
      [0, 2, 1],
      [0, 1, 0],
      [0, -1, 1],
      [0, -2, 0],
      [1, 1, 0],
      [1, 0, 1],
      [1, -1, 0],
      [2, 3, 1],
      [2, 2, 1],
    ];
    const users = new UserHistograms(3);
    for (const [user, logit, label] of rows) users.add(user, p(logit), label);
    const expected = gauc(
      rows.map((r) => r[1]),
      rows.map((r) => r[2]),
      rows.map((r) => r[0]),
    );
    const result = users.gauc();
    expect(result.gauc).toBeCloseTo(expected.gauc, 12);
    expect(result.users).toBe(2);
    // (4·0.75 + 3·0.5) / 7, and the variance across the two users of their weighted deviations.
    const g = 4.5 / 7;
    expect(result.variance).toBeCloseTo((2 * ((4 * (0.75 - g)) ** 2 + (3 * (0.5 - g)) ** 2)) / 49, 12);

    users.clear();
    expect(users.gauc()).toEqual({ gauc: NaN, variance: NaN, users: 0 });
  });
});

describe('StreamingBootstrap', () => {
  /** One arm of simulated traffic with strong user effects, fed to the bootstrap and to per-bucket aggregates. */
  function arm(seed: number, replicates: number) {
    const users = 400;
    const traffic = new CanaryTraffic(
      { users, canaryPercent: 0, userSd: 1.2, tasteSd: 1, itemsPerRequest: 10, seed },
      { production: { userError: 0.5, noise: 1 }, canary: { userError: 0.5, noise: 1 } },
    );
    const bootstrap = new StreamingBootstrap(replicates, StreamingBootstrap.weights(users, replicates, new Rng(seed)));
    const perUser = new BinaryAggregate(users);
    for (let r = 0; r < 3000; r++) {
      const user = traffic.next();
      for (let j = 0; j < traffic.scores.length; j++) {
        bootstrap.add(user, traffic.scores[j], traffic.labels[j]);
        perUser.add(user, traffic.scores[j], traffic.labels[j]);
      }
    }
    return { bootstrap, clustered: clusteredAuc(perUser) };
  }

  it('reads the AUC of all predictions as the binned aggregates do', () => {
    const { bootstrap, clustered } = arm(1, 20);
    expect(bootstrap.auc()).toBeCloseTo(clustered.auc, 12);
  });

  it("estimates the difference's variance across users: close to the clustered variance, far above the independent one", () => {
    const a = arm(2, 400);
    const b = arm(3, 400);
    const variance = a.bootstrap.differenceVariance(b.bootstrap);
    const clustered = a.clustered.variance + b.clustered.variance;
    expect(variance / clustered).toBeGreaterThan(0.75);
    expect(variance / clustered).toBeLessThan(1.33);
    expect(variance).toBeGreaterThan(2 * (a.clustered.iidVariance + b.clustered.iidVariance));
  });
});
