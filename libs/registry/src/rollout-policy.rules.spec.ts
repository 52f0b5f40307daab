import { InvalidFieldsError } from '@app/common';
import { parseModelSpec, Rng } from '@app/mmoe';

import { checkRolloutPolicy, decideRollout, type RolloutPolicy, type TaskSample } from './rollout-policy.rules';

const SPEC = parseModelSpec({
  features: [{ name: 'genre', type: 'categorical' }],
  tasks: [
    { name: 'click', label: 'clicked', type: 'binary' },
    { name: 'watch', label: 'seconds', type: 'regression' },
  ],
  model: { expertUnits: [4] },
});

const POLICY: RolloutPolicy = { confidence: 0.95, minEvents: 500, tolerance: 0.02 };

/** n labelled predictions whose positives score `separation` standard deviations higher. */
function sample(seed: number, n: number, separation: number): TaskSample {
  const rng = new Rng(seed);
  const labels = Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0));
  return { labels, scores: labels.map((y) => y * separation + rng.gaussian()) };
}

describe('rollout policy rules', () => {
  it('waits until both sides have minEvents labelled predictions', () => {
    const decision = decideRollout(POLICY, SPEC, { click: sample(1, 499, 1) }, { click: sample(2, 5000, 1) });
    expect(decision.verdict).toBe('wait');
    expect(decision.reason).toBe('click: 499 of 500 labelled events');
    expect(decision.tasks[0]).toMatchObject({ task: 'click', canary: { count: 499 }, production: { count: 5000 } });
  });

  it('promotes a canary as good as production, with the evidence of the test', () => {
    const decision = decideRollout(POLICY, SPEC, { click: sample(3, 6000, 1) }, { click: sample(4, 6000, 1) });
    expect(decision.verdict).toBe('promote');
    const [click] = decision.tasks;
    expect(click.lowerBound!).toBeGreaterThan(-POLICY.tolerance);
    expect(click.pValueNotWorse!).toBeLessThan(0.05);
    expect(decision).toMatchObject({ test: 'delong-unpaired', confidence: 0.95 });
  });

  it('rejects a canary worse beyond the tolerance', () => {
    const decision = decideRollout(POLICY, SPEC, { click: sample(5, 1000, 0.2) }, { click: sample(6, 1000, 1) });
    expect(decision.verdict).toBe('reject');
    expect(decision.tasks[0].upperBound!).toBeLessThan(-POLICY.tolerance);
    expect(decision.tasks[0].pValueWorse!).toBeLessThan(0.05);
    expect(decision.reason).toBe('worse beyond tolerance on click');
  });

  it('keeps waiting while the evidence is inconclusive', () => {
    const decision = decideRollout(POLICY, SPEC, { click: sample(7, 600, 0.9) }, { click: sample(8, 600, 1) });
    expect(decision.verdict).toBe('wait');
    expect(decision.tasks[0].reason).toBe('inconclusive so far');
  });

  it('applies per-task overrides', () => {
    const strict = { ...POLICY, tasks: { click: { minEvents: 10_000 } } };
    expect(decideRollout(strict, SPEC, { click: sample(3, 6000, 1) }, { click: sample(4, 6000, 1) }).verdict).toBe(
      'wait',
    );
  });

  it('400s a policy naming a task that is not binary, or not of the model', () => {
    try {
      checkRolloutPolicy(SPEC, { ...POLICY, tasks: { watch: {}, click: { minEvents: 5 }, share: {} } });
      throw new Error('expected a 400');
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidFieldsError);
      const fields = (e as InvalidFieldsError).errors.map((x) => x.field);
      expect(fields).toEqual(['tasks.watch', 'tasks.share']);
    }
  });
});
