import { binaryMetrics, parseModelSpec, Rng } from '@app/mmoe';
import type { TaskMetricsByName } from '@app/registry';

import {
  decideRollout,
  unseenFrom,
  weightingDifference,
  type GatePolicy,
  type ProductionBaseline,
} from './evaluation-gate.rules';

const TASKS = [
  { name: 'click', type: 'binary' as const },
  { name: 'like', type: 'binary' as const },
  { name: 'watch_time', type: 'regression' as const },
];
const POLICY: GatePolicy = {
  autoCanary: true,
  binaryMetric: 'auc',
  aucTolerance: 0.005,
  rmseTolerance: 0.01,
  minLabels: 30,
};

/** Metrics of a held-out slice of 1,000 rows, 20 % clicked and 10 % liked. */
function metrics(click: number, like: number, rmse: number): TaskMetricsByName {
  return {
    click: { auc: click, logloss: 0.3, count: 1000, labelRate: 0.2 },
    like: { auc: like, count: 1000, labelRate: 0.1 },
    watch_time: { rmse, mae: rmse / 2, count: 1000 },
  };
}

const production = (tasks: TaskMetricsByName): ProductionBaseline => ({ kind: 'evaluated', versionId: 7, tasks });
const PRODUCTION = production(metrics(0.7, 0.6, 10));

describe('evaluation gate', () => {
  it('leaves the first version a candidate: a human promotes it', () => {
    expect(decideRollout(TASKS, metrics(0.8, 0.7, 5), { kind: 'none' }, POLICY)).toEqual({
      decision: 'candidate',
      reason: 'there is no production version to compare with; promote one by hand',
    });
  });

  it('leaves a candidate alone when production could not be judged on its data', () => {
    const baseline: ProductionBaseline = {
      kind: 'incomparable',
      versionId: 7,
      why: 'it reads features the candidate does not (user_segment)',
    };
    expect(decideRollout(TASKS, metrics(0.8, 0.7, 5), baseline, POLICY)).toEqual({
      decision: 'candidate',
      reason: 'production (version 7) was not evaluated: it reads features the candidate does not (user_segment)',
    });
  });

  it('canaries when the first task improves and no task is worse beyond the tolerance', () => {
    // like loses 0.004 AUC (tolerance 0.005) and watch time's RMSE rises 0.9 % (tolerance 1 %).
    expect(decideRollout(TASKS, metrics(0.7001, 0.596, 10.09), PRODUCTION, POLICY)).toEqual({
      decision: 'canary',
      reason: 'click AUC improved (0.7001 vs production 0.7); no task is worse beyond the tolerance',
    });
  });

  it('keeps a candidate whose first task does not improve, however good the others are', () => {
    expect(decideRollout(TASKS, metrics(0.7, 0.9, 1), PRODUCTION, POLICY)).toEqual({
      decision: 'candidate',
      reason: 'kept as candidate: click AUC did not improve (0.7 vs production 0.7)',
    });
  });

  it('keeps a candidate with a task worse beyond the tolerance, absolute on AUC and relative on RMSE', () => {
    expect(decideRollout(TASKS, metrics(0.75, 0.594, 10), PRODUCTION, POLICY).reason).toBe(
      'kept as candidate: like AUC is worse beyond the tolerance of 0.005 (0.594 vs production 0.6)',
    );
    expect(decideRollout(TASKS, metrics(0.75, 0.6, 10.2), PRODUCTION, POLICY).reason).toBe(
      'kept as candidate: watch_time RMSE is worse beyond the tolerance of 1 % (10.2 vs production 10)',
    );
  });

  it('judges a regression first task by RMSE, lower being better', () => {
    const tasks = [TASKS[2], TASKS[0]];
    expect(decideRollout(tasks, metrics(0.7, 0.6, 9.5), PRODUCTION, POLICY)).toMatchObject({
      decision: 'canary',
      reason: expect.stringMatching(/^watch_time RMSE improved \(9.5 vs production 10\)/),
    });
    expect(decideRollout(tasks, metrics(0.7, 0.6, 10.5), PRODUCTION, POLICY).decision).toBe('candidate');
  });

  it('reports a pass but leaves the decision to a human when AUTO_CANARY is off', () => {
    expect(decideRollout(TASKS, metrics(0.8, 0.6, 10), PRODUCTION, { ...POLICY, autoCanary: false })).toEqual({
      decision: 'candidate',
      reason:
        'click AUC improved (0.8 vs production 0.7); no task is worse beyond the tolerance, but AUTO_CANARY is off',
    });
  });

  it('never canaries on an undefined metric of the candidate, nor on a first task production cannot be measured on', () => {
    expect(decideRollout(TASKS, metrics(0.8, NaN, 10), PRODUCTION, POLICY).reason).toBe(
      'kept as candidate: like AUC of the candidate is undefined',
    );
    expect(decideRollout(TASKS, metrics(0.8, 0.6, 10), production(metrics(NaN, 0.6, 10)), POLICY).reason).toBe(
      'kept as candidate: click AUC of production is undefined, so no gain can be measured',
    );
  });

  it('does not hold a secondary task against the candidate when production has no measure of it (a new task)', () => {
    const { click, watch_time } = metrics(0.7, 0.6, 10);
    expect(decideRollout(TASKS, metrics(0.8, 0.6, 10), production({ click, watch_time }), POLICY).decision).toBe(
      'canary',
    );
  });

  it('judges binary tasks by GAUC when TRAINING_GATE_METRIC=gauc', () => {
    const { like, watch_time } = metrics(0, 0.6, 10);
    const withGauc = (auc: number, gauc: number, gaucGroups = 200): TaskMetricsByName => ({
      click: { auc, gauc, count: 1000, labelRate: 0.2, gaucGroups },
      like: { ...like, gauc: 0.6, gaucGroups: 100 },
      watch_time,
    });
    const baseline = production(withGauc(0.7, 0.6));
    const policy: GatePolicy = { ...POLICY, binaryMetric: 'gauc' };
    // A better global AUC is not enough when the per-user ranking got worse.
    expect(decideRollout(TASKS, withGauc(0.8, 0.59), baseline, policy).reason).toBe(
      'kept as candidate: click GAUC is worse beyond the tolerance of 0.005 (0.59 vs production 0.6)',
    );
    expect(decideRollout(TASKS, withGauc(0.69, 0.61), baseline, policy)).toEqual({
      decision: 'canary',
      reason: 'click GAUC improved (0.61 vs production 0.6); no task is worse beyond the tolerance',
    });
    expect(decideRollout(TASKS, metrics(0.8, 0.6, 10), baseline, policy).reason).toBe(
      'kept as candidate: click GAUC is not judged: 0 held-out users with both a positive and a negative, the gate ' +
        'needs 30 (TRAINING_GATE_MIN_LABELS)',
    );
    // 200 clicks, but only 12 users who clicked and did not: GAUC rests on those 12.
    expect(decideRollout(TASKS, withGauc(0.69, 0.61, 12), baseline, policy).reason).toMatch(
      /^kept as candidate: click GAUC is not judged: 12 held-out users with both a positive and a negative,/,
    );
  });

  it('does not judge a task on fewer held-out labels than TRAINING_GATE_MIN_LABELS, of either class', () => {
    const few = (task: string, count: number, labelRate?: number) => {
      const all = metrics(0.8, 0.6, 10);
      return { ...all, [task]: { ...all[task], count, ...(labelRate !== undefined && { labelRate }) } };
    };
    expect(decideRollout(TASKS, few('click', 100, 0.12), PRODUCTION, POLICY).reason).toBe(
      'kept as candidate: click AUC is not judged: 12 held-out positives, the gate needs 30 (TRAINING_GATE_MIN_LABELS)',
    );
    expect(decideRollout(TASKS, few('click', 100, 0.8), PRODUCTION, POLICY).reason).toMatch(/: 20 held-out negatives,/);
    // A secondary task too rare to judge neither passes nor blocks: the reason names it.
    expect(decideRollout(TASKS, few('like', 1000, 0.029), PRODUCTION, POLICY)).toEqual({
      decision: 'canary',
      reason:
        'click AUC improved (0.8 vs production 0.7); no task is worse beyond the tolerance; like AUC is not judged: ' +
        '29 held-out positives, the gate needs 30 (TRAINING_GATE_MIN_LABELS)',
    });
    // No labelled row (a label rate of 0 / 0): not judged either; a task missing from the report is undefined.
    expect(decideRollout(TASKS, few('like', 0, NaN), PRODUCTION, POLICY).reason).toMatch(
      /; like AUC is not judged: 0 /,
    );
    const { click, watch_time } = metrics(0.8, 0.6, 10);
    expect(decideRollout(TASKS, { click, watch_time }, PRODUCTION, POLICY).reason).toBe(
      'kept as candidate: like AUC of the candidate is undefined',
    );
    // No like at all: no AUC, and not judged rather than worse.
    const noLike = { ...few('like', 1000, 0), like: { auc: NaN, count: 1000, labelRate: 0 } };
    expect(decideRollout(TASKS, noLike, PRODUCTION, POLICY)).toMatchObject({
      decision: 'canary',
      reason: expect.stringMatching(/; like AUC is not judged: 0 held-out positives,/),
    });
    expect(decideRollout(TASKS, few('watch_time', 29), PRODUCTION, POLICY).reason).toMatch(
      /; watch_time RMSE is not judged: 29 held-out rows,/,
    );
    expect(decideRollout(TASKS, few('click', 150, 0.2), PRODUCTION, POLICY).decision).toBe('canary');
  });

  /**
   * Simulated held-out slices, the candidate's and production's click scores each drawn as the label's signal plus
   * their own noise (a binormal ROC): `shift` is the signal, the candidate's `gain` more than production's.
   */
  function canaries(policy: GatePolicy, rows: number, rate: number, gain: number, runs = 400): number {
    const rng = new Rng(7);
    let canaried = 0;
    for (let run = 0; run < runs; run++) {
      const labels = Float32Array.from({ length: rows }, () => (rng.next() < rate ? 1 : 0));
      const scores = (shift: number) => Float32Array.from(labels, (y) => y * shift + rng.gaussian());
      const task = (shift: number) => ({ click: { ...binaryMetrics(scores(shift), labels) } });
      const [candidate, production] = [task(0.5 + gain), task(0.5)];
      const tasks = [{ name: 'click', type: 'binary' as const }];
      if (
        decideRollout(tasks, candidate, { kind: 'evaluated', versionId: 1, tasks: production }, policy).decision ===
        'canary'
      )
        canaried++;
    }
    return canaried / runs;
  }

  it('on simulated slices: never canaries on a handful of clicks when nothing differs, as the rule alone did half the time', () => {
    // 300 rows at 4 %: about 12 clicks.
    expect(canaries(POLICY, 300, 0.04, 0)).toBe(0);
    const alone = canaries({ ...POLICY, minLabels: 1 }, 300, 0.04, 0);
    expect(alone).toBeGreaterThan(0.4);
    expect(alone).toBeLessThan(0.6);
  });

  it('on simulated slices: canaries a real gain measured on enough clicks', () => {
    // 5,000 rows at 4 %: about 200 clicks; the candidate separates them better (AUC about 0.71 against 0.64).
    expect(canaries(POLICY, 5000, 0.04, 0.3, 100)).toBeGreaterThan(0.95);
  });
});

describe('weightingDifference', () => {
  const spec = (training: object) =>
    parseModelSpec({
      features: [{ name: 'genre', type: 'categorical' }],
      tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
      model: { expertUnits: [4] },
      training,
    });

  it('tells metrics weighted one way from metrics weighted another: the gate would compare unlike AUCs', () => {
    const weighted = spec({ sampleWeight: 'w', weightedMetrics: true });
    expect(weightingDifference(weighted, spec({}))).toBe(
      `its metrics are unweighted and the candidate's weighted by "w" (training.weightedMetrics): they would not compare`,
    );
    expect(weightingDifference(spec({}), weighted)).toMatch(
      /^its metrics are weighted by "w" and the candidate's unweighted/,
    );
    expect(weightingDifference(weighted, spec({ sampleWeight: 'v', weightedMetrics: true }))).toEqual(
      expect.any(String),
    );
    // Weights used in training only weigh the loss, not the metrics.
    expect(weightingDifference(spec({ sampleWeight: 'w' }), spec({}))).toBeUndefined();
    expect(weightingDifference(weighted, spec({ sampleWeight: 'w', weightedMetrics: true }))).toBeUndefined();
  });
});

describe('evaluation gate, production trained on part of the held-out slice', () => {
  // A full retrain's slice: 10 events an hour apart from 10:00; an incremental production trained up to trainedTo.
  const times = Array.from({ length: 10 }, (_, i) => Date.parse('2026-12-01T10:00:00Z') + i * 3_600_000);

  it('finds the rows production has not trained on: those at or after its trainedTo', () => {
    expect(unseenFrom(times, undefined)).toBe(0); // it records none (trained on a file, or before it was recorded)
    expect(unseenFrom(times, '2026-12-01T09:00:00Z')).toBe(0); // trained on none of the slice
    expect(unseenFrom(times, '2026-12-01T13:00:00Z')).toBe(3); // the event at 13:00 is not its
    expect(unseenFrom(times, '2026-12-01T13:30:00Z')).toBe(4);
    expect(unseenFrom(times, '2026-12-01T20:00:00Z')).toBe(10); // trained on all of it
  });

  /** Production has learnt the first rows of the slice: there it wins; on the rest, the candidate does. */
  const baseline = (rows: number, candidate: TaskMetricsByName): ProductionBaseline => ({
    kind: 'evaluated',
    versionId: 7,
    tasks: metrics(0.8, 0.7, 8),
    unseen: { trainedTo: '2026-12-01T13:00:00Z', rows, candidate, production: metrics(0.7, 0.6, 10) },
  });

  it('judges by the rows production has not trained on, saying so, whatever the whole slice says', () => {
    expect(decideRollout(TASKS, metrics(0.72, 0.6, 10), baseline(700, metrics(0.71, 0.6, 10)), POLICY)).toEqual({
      decision: 'canary',
      reason:
        'click AUC improved (0.71 vs production 0.7); no task is worse beyond the tolerance; compared on the 700 ' +
        'held-out rows from 2026-12-01T13:00:00Z, which production has not trained on',
    });
    // On the whole slice, production's own training rows make it look better: that no longer decides.
    expect(decideRollout(TASKS, metrics(0.72, 0.6, 10), production(metrics(0.8, 0.7, 8)), POLICY)).toMatchObject({
      decision: 'candidate',
    });
  });

  it('keeps the candidate when too few of those rows are left to judge the first task by', () => {
    const few = { ...metrics(0.9, 0.6, 10), click: { auc: 0.9, count: 100, labelRate: 0.2 } };
    expect(decideRollout(TASKS, metrics(0.72, 0.6, 10), baseline(100, few), POLICY)).toEqual({
      decision: 'candidate',
      reason:
        'kept as candidate: click AUC is not judged: 20 held-out positives, the gate needs 30 (TRAINING_GATE_MIN_LABELS); ' +
        'compared on the 100 held-out rows from 2026-12-01T13:00:00Z, which production has not trained on',
    });
  });

  it('keeps the candidate, uncompared, when production has trained on every held-out row', () => {
    expect(decideRollout(TASKS, metrics(0.9, 0.9, 1), baseline(0, {}), POLICY)).toEqual({
      decision: 'candidate',
      reason:
        'kept as candidate: production (version 7) has trained on every held-out row (its data ends at ' +
        '2026-12-01T13:00:00Z), so the comparison would favour it',
    });
  });

  it('decides as before when production has trained on none of them (no rows set apart)', () => {
    expect(decideRollout(TASKS, metrics(0.7001, 0.596, 10.09), PRODUCTION, POLICY)).toEqual({
      decision: 'canary',
      reason: 'click AUC improved (0.7001 vs production 0.7); no task is worse beyond the tolerance',
    });
  });
});
