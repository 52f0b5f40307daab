import type { TaskMetricsByName } from '@app/registry';

import { decideRollout, type GatePolicy, type ProductionBaseline } from './evaluation-gate.rules';

const TASKS = [
  { name: 'click', type: 'binary' as const },
  { name: 'like', type: 'binary' as const },
  { name: 'watch_time', type: 'regression' as const },
];
const POLICY: GatePolicy = { autoCanary: true, binaryMetric: 'auc', aucTolerance: 0.005, rmseTolerance: 0.01 };

function metrics(click: number, like: number, rmse: number): TaskMetricsByName {
  return { click: { auc: click, logloss: 0.3 }, like: { auc: like }, watch_time: { rmse, mae: rmse / 2 } };
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
    const withGauc = (auc: number, gauc: number): TaskMetricsByName => ({
      click: { auc, gauc },
      like: { auc: 0.6, gauc: 0.6 },
      watch_time: { rmse: 10 },
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
      'kept as candidate: click GAUC of the candidate is undefined',
    );
  });
});
