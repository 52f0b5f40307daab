import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import type { ModelStatus } from '@app/db';

import type { LockedVersions, ModelVersion } from './model-version.reader';
import {
  checkFeedClashes,
  fusionOf,
  initialPrecision,
  mergeObjectiveWeights,
  planArchive,
  planCanary,
  planEndShadow,
  planPrecision,
  planPromote,
  planReject,
  planRollback,
  planShadow,
  rankingPatch,
  specOf,
  type ServedSpec,
} from './rollout.rules';

const SPEC = {
  features: [{ name: 'genre', type: 'categorical' }],
  tasks: [
    { name: 'click', label: 'clicked', type: 'binary' },
    { name: 'like', label: 'liked', type: 'binary', weight: 0.5 },
  ],
  model: { expertUnits: [4] },
};

function version(id: number, status: ModelStatus, extra: Partial<ModelVersion> = {}): ModelVersion {
  return {
    id,
    status,
    spec: SPEC,
    metrics: {},
    artifactSha256: 'x',
    onnxSha256: null,
    servingPrecision: 'fp32',
    parentVersionId: null,
    trainingJobId: null,
    canaryPercent: status === 'canary' ? 10 : null,
    shadowPercent: status === 'shadow' ? 10 : null,
    rolloutPolicy: null,
    objectiveWeights: { click: 1, like: 0.5 },
    fusion: null,
    note: null,
    createdAt: new Date(0),
    promotedAt: null,
    ...extra,
  };
}

const at = new Date('2025-01-01T00:00:00Z');

function expectError(fn: () => unknown, type: new (...args: never[]) => Error, message: string | RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected an error');
}

describe('rollout rules', () => {
  const production = version(1, 'production');
  const canary = version(2, 'canary');
  const candidate = version(3, 'candidate');

  describe('canary', () => {
    it('makes a candidate the canary and sends the current canary back to candidate, in that order', () => {
      const plan = planCanary({ production, canary, target: candidate }, 3, 25);
      expect(plan.updates).toEqual([
        { id: 2, patch: { status: 'candidate', canaryPercent: null } },
        { id: 3, patch: { status: 'canary', canaryPercent: 25 } },
      ]);
      expect(plan.event).toEqual({ action: 'canary', fromVersionId: 2, toVersionId: 3, percent: 25 });
    });

    it('changes the percent (and weights) of the current canary', () => {
      const plan = planCanary({ production, canary, target: canary }, 2, 50, { objectiveWeights: { like: 2 } });
      expect(plan.updates).toEqual([
        {
          id: 2,
          patch: { status: 'canary', canaryPercent: 50, objectiveWeights: { click: 1, like: 2 }, fusion: null },
        },
      ]);
    });

    it("refuses a call that changes nothing, which would restart the canary's live test", () => {
      expectError(
        () => planCanary({ production, canary, target: canary }, 2, 10, {}),
        ConflictError,
        /^version 2 is the canary; it already serves 10 % of users \(a new percent or ranking is a new live test\)$/,
      );
      // The ranking it has, sent again: no change either (the stored weights are { click: 1, like: 0.5 }).
      for (const same of [
        { objectiveWeights: { like: 0.5 } },
        { fusion: { type: 'sum', weights: { click: 1, like: 0.5 } } },
      ])
        expectError(
          () => planCanary({ production, canary, target: canary }, 2, 10, same),
          ConflictError,
          /it already serves 10 % of users/,
        );
      expect(
        planCanary({ production, canary, target: canary }, 2, 10, { objectiveWeights: { like: 1 } }).event,
      ).toEqual({ action: 'canary', fromVersionId: 2, toVersionId: 2, percent: 10 });
    });

    it("refuses a version that does not score production's tasks; one that adds a task may serve", () => {
      const other = version(5, 'candidate', {
        spec: { ...SPEC, tasks: [{ name: 'income', label: 'income', type: 'binary' }, SPEC.tasks[1]] },
      });
      expectError(
        () => planCanary({ production, target: other }, 5, 10),
        ConflictError,
        /^version 5 is a candidate; it does not score production's task click: its users' answers would lack them/,
      );
      const more = version(6, 'candidate', {
        spec: { ...SPEC, tasks: [...SPEC.tasks, { name: 'share', label: 'shared', type: 'binary' }] },
      });
      expect(planCanary({ production, target: more }, 6, 10).event.toVersionId).toBe(6);
    });

    it.each<[ModelStatus, RegExp]>([
      ['archived', /^version 4 is archived; only a candidate or the shadow can become the canary$/],
      ['production', /^version 4 is in production; only a candidate/],
      ['failed', /^version 4 is a failed version; failed versions can only be archived$/],
    ])('refuses a version that is %s', (status, message) => {
      const target = version(4, status);
      expectError(() => planCanary({ target }, 4, 10), ConflictError, message);
    });

    it('404s an unknown version', () => {
      expectError(() => planCanary({ production }, 9, 10), NotFoundError, 'version 9 does not exist');
    });

    it("refuses a job's version judged against another production than the one in place now, or none", () => {
      const job = (judgedAgainst?: number | null) => ({ judgedAgainst });
      expect(planCanary({ production, target: candidate }, 3, 10, undefined, job(1)).event.toVersionId).toBe(3);
      expect(planCanary({ target: candidate }, 3, 10, undefined, job(null)).event.toVersionId).toBe(3);
      expect(planCanary({ production, target: candidate }, 3, 10, undefined, job()).event.toVersionId).toBe(3);
      expectError(
        () => planCanary({ production, target: candidate }, 3, 10, undefined, job(7)),
        ConflictError,
        /^version 3 is a candidate; it was judged against production 7, and production is version 1 now$/,
      );
      expectError(
        () => planCanary({ production, target: candidate }, 3, 10, undefined, job(null)),
        ConflictError,
        /judged against no production, and production is version 1 now$/,
      );
      expectError(
        () => planCanary({ target: candidate }, 3, 10, undefined, job(1)),
        ConflictError,
        /production is none/,
      );
      // Taken once: by an overlapping attempt of the job, or moved by a person since the job read it.
      expectError(
        () => planCanary({ production, canary, target: canary }, 2, 10, undefined, job(1)),
        ConflictError,
        /^version 2 is the canary; a training job makes its candidate the canary, once$/,
      );
    });

    it("does not replace the canary with a job's version (a person may), nor cut its test short", () => {
      expectError(
        () => planCanary({ production, canary, target: candidate }, 3, 10, undefined, { judgedAgainst: 1 }),
        ConflictError,
        /^version 3 is a candidate; version 2 is the canary, and a training job does not replace it$/,
      );
      expect(planCanary({ production, canary, target: candidate }, 3, 10).updates).toHaveLength(2);
    });
  });

  describe('promote', () => {
    it('archives production and promotes the canary, in that order', () => {
      const plan = planPromote({ production, canary }, at);
      expect(plan.updates).toEqual([
        { id: 1, patch: { status: 'archived' } },
        { id: 2, patch: { status: 'production', canaryPercent: null, promotedAt: at } },
      ]);
      expect(plan.event).toEqual({ action: 'promote', fromVersionId: 1, toVersionId: 2, percent: null });
    });

    it('promotes the first production over nothing', () => {
      expect(planPromote({ canary }, at).event).toMatchObject({ fromVersionId: null, toVersionId: 2 });
    });

    it('409s without a canary, or when the named version is not the canary', () => {
      expectError(() => planPromote({ production }, at), ConflictError, /there is no canary to promote/);
      expectError(
        () => planPromote({ production, canary, target: candidate }, at, undefined, 3),
        ConflictError,
        'version 3 is a candidate; only the canary can be promoted',
      );
    });
  });

  describe('rollback', () => {
    it('restores the previous production, archives the current one and clears the canary', () => {
      const previous = version(5, 'archived');
      const plan = planRollback({ production, canary }, previous, at);
      expect(plan.updates).toEqual([
        { id: 2, patch: { status: 'candidate', canaryPercent: null } },
        { id: 1, patch: { status: 'archived' } },
        { id: 5, patch: { status: 'production', canaryPercent: null, promotedAt: at } },
      ]);
      expect(plan.event).toEqual({ action: 'rollback', fromVersionId: 1, toVersionId: 5, percent: null });
    });

    it('takes off a shadow that takes a user feature from another source than the version it brings back', () => {
      const fed = (task: string) => ({
        ...SPEC,
        features: [
          ...SPEC.features,
          { name: 'user_clicks', type: 'sequence', hashBuckets: 8, maxLength: 3, fromEvents: { task } },
        ],
      });
      const previous = version(5, 'archived', { spec: fed('click') });
      const clashing = version(3, 'shadow', { spec: fed('like') });
      expect(planRollback({ production, shadow: clashing }, previous, at).updates).toEqual([
        { id: 3, patch: { status: 'candidate', shadowPercent: null } },
        { id: 1, patch: { status: 'archived' } },
        { id: 5, patch: { status: 'production', canaryPercent: null, promotedAt: at } },
      ]);
      const agreeing = version(3, 'shadow', { spec: fed('click') });
      expect(planRollback({ production, shadow: agreeing }, previous, at).updates.map((u) => u.id)).toEqual([1, 5]);
    });

    it('409s without production or without a previous one', () => {
      expectError(() => planRollback({}, undefined, at), ConflictError, 'there is no production version to roll back');
      expectError(
        () => planRollback({ production }, undefined, at),
        ConflictError,
        /version 1 was not promoted over another version/,
      );
    });
  });

  describe('shadow', () => {
    it('makes a candidate the shadow, sending the current shadow back to candidate; a canary may stay', () => {
      const shadow = version(4, 'shadow');
      const plan = planShadow({ production, canary, shadow, target: candidate }, 3, 20);
      expect(plan.updates).toEqual([
        { id: 4, patch: { status: 'candidate', shadowPercent: null } },
        { id: 3, patch: { status: 'shadow', shadowPercent: 20 } },
      ]);
      expect(plan.event).toEqual({ action: 'shadow', fromVersionId: 4, toVersionId: 3, percent: 20 });
    });

    it('refuses a call that changes nothing; a new percent is a change', () => {
      const shadow = version(4, 'shadow');
      expectError(
        () => planShadow({ shadow, target: shadow }, 4, 10),
        ConflictError,
        /it already scores 10 % of requests$/,
      );
      expect(planShadow({ shadow, target: shadow }, 4, 20).updates).toEqual([
        { id: 4, patch: { status: 'shadow', shadowPercent: 20 } },
      ]);
    });

    it('stops the shadow, a candidate again; only the shadow', () => {
      const shadow = version(4, 'shadow');
      expect(planEndShadow({ shadow, target: shadow }, 4)).toEqual({
        updates: [{ id: 4, patch: { status: 'candidate', shadowPercent: null } }],
        event: { action: 'shadow', fromVersionId: 4, toVersionId: null, percent: null },
      });
      expectError(() => planEndShadow({ target: candidate }, 3), ConflictError, /only the shadow can stop shadowing$/);
    });

    it('refuses a version that is not a candidate or the shadow', () => {
      expectError(
        () => planShadow({ production, target: production }, 1, 5),
        ConflictError,
        /only a candidate can become the shadow/,
      );
    });

    it('lets the shadow become the canary, which ends its background share', () => {
      const shadow = version(4, 'shadow');
      expect(planCanary({ production, shadow, target: shadow }, 4, 10).updates).toEqual([
        { id: 4, patch: { status: 'canary', canaryPercent: 10, shadowPercent: null } },
      ]);
    });
  });

  describe('reject', () => {
    it('takes the canary off and archives it', () => {
      expect(planReject({ production, canary, target: canary }, 2)).toEqual({
        updates: [{ id: 2, patch: { status: 'archived', canaryPercent: null } }],
        event: { action: 'reject', fromVersionId: 2, toVersionId: null, percent: null },
      });
    });

    it('refuses anything but the canary', () => {
      expectError(
        () => planReject({ production, target: candidate }, 3),
        ConflictError,
        /only the canary can be rejected/,
      );
    });
  });

  describe('archive', () => {
    it.each<ModelStatus>(['candidate', 'canary', 'failed'])('archives a %s', (status) => {
      const target = version(6, status);
      expect(planArchive({ target }, 6)).toEqual({
        updates: [{ id: 6, patch: { status: 'archived', canaryPercent: null } }],
        event: { action: 'archive', fromVersionId: 6, toVersionId: null, percent: null },
      });
    });

    it('never archives production, nor twice', () => {
      const locked: LockedVersions = { production, target: production };
      expectError(
        () => planArchive(locked, 1),
        ConflictError,
        /^version 1 is in production; promote another version or roll back/,
      );
      expectError(() => planArchive({ target: version(7, 'archived') }, 7), ConflictError, 'version 7 is archived');
    });
  });

  describe('objective weights', () => {
    const spec = specOf({ spec: SPEC });

    it('defaults to the spec weights and overrides task by task', () => {
      expect(mergeObjectiveWeights(spec, {})).toEqual({ click: 1, like: 0.5 });
      expect(mergeObjectiveWeights(spec, { click: 2, like: 3 }, { like: 0 })).toEqual({ click: 2, like: 0 });
    });

    it('400s a name that is not a task, naming the field', () => {
      try {
        mergeObjectiveWeights(spec, {}, { share: 1 });
        throw new Error('expected an error');
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidFieldsError);
        expect(e).toMatchObject({
          errors: [
            {
              field: 'objectiveWeights.share',
              message: 'objectiveWeights.share is not a task of the model (click, like)',
            },
          ],
        });
      }
    });
  });

  describe('ranking changes', () => {
    const product = { type: 'product', exponents: { click: 1, like: 0.5 } };

    it('stores a product rule, turns a sum rule into objective weights, and drops the product on new weights', () => {
      const canary = version(2, 'canary');
      expect(rankingPatch(canary, { fusion: product })).toEqual({ fusion: product });
      expect(rankingPatch(canary, { fusion: { type: 'sum', weights: { like: 2 } } })).toEqual({
        objectiveWeights: { click: 0, like: 2 },
        fusion: null,
      });
      const ranked = version(2, 'canary', { fusion: product as never });
      expect(rankingPatch(ranked, { objectiveWeights: { like: 2 } })).toEqual({
        objectiveWeights: { click: 1, like: 2 },
        fusion: null,
      });
      expect(rankingPatch(canary, {})).toEqual({});
      expect(planPromote({ canary }, at, { fusion: product }).updates[0].patch).toMatchObject({ fusion: product });
    });

    it('refuses both at once and a bad rule, naming the field', () => {
      expectError(
        () => rankingPatch(version(2, 'canary'), { fusion: product, objectiveWeights: { click: 1 } }),
        InvalidFieldsError,
        /fusion and objectiveWeights cannot both be given/,
      );
      expectError(
        () =>
          planCanary({ target: version(3, 'candidate') }, 3, 5, { fusion: { type: 'product', exponents: { x: 1 } } }),
        InvalidFieldsError,
        /fusion.exponents.x is not a task of the model/,
      );
    });

    it("reads a version's rule: its product rule, else the sum of its objective weights", () => {
      const spec = specOf(version(1, 'production'));
      expect(fusionOf(version(1, 'production'), spec)).toEqual({ type: 'sum', weights: { click: 1, like: 0.5 } });
      expect(fusionOf(version(1, 'production', { fusion: product as never }), spec)).toEqual(product);
    });
  });

  describe('precision', () => {
    const checked = (eligible: boolean): Partial<ModelVersion> => {
      const auc = { click: { fp32: 0.8, int8: eligible ? 0.8 : 0.796 } };
      return { metrics: { int8: { auc, maxAucDrop: eligible ? 0 : 0.004, tolerance: 0.001, eligible, rows: 500 } } };
    };

    it('serves int8 only after a passed holdout check, and fp32 always', () => {
      const target = version(3, 'production', checked(true));
      expect(planPrecision({ target }, 3, 'int8')).toEqual({
        updates: [{ id: 3, patch: { servingPrecision: 'int8' } }],
        event: { action: 'precision', fromVersionId: null, toVersionId: 3, percent: null },
      });
      const int8 = version(3, 'canary', { servingPrecision: 'int8' });
      expect(planPrecision({ target: int8 }, 3, 'fp32').updates).toEqual([
        { id: 3, patch: { servingPrecision: 'fp32' } },
      ]);
    });

    it('starts a new version in int8 when its check passed on every task and the policy is auto, else fp32', () => {
      const tasks = SPEC.tasks;
      const judged = (eligible: boolean, aucTasks = ['click', 'like']) => ({
        int8: {
          eligible,
          maxAucDrop: eligible ? 0 : 0.004,
          tolerance: 0.001,
          auc: Object.fromEntries(aucTasks.map((t) => [t, { fp32: 0.8, int8: 0.8 }])),
          rows: 500,
        },
      });
      expect(initialPrecision(judged(true), tasks, 'auto')).toBe('int8');
      expect(initialPrecision(judged(true), tasks, 'off')).toBe('fp32');
      expect(initialPrecision(judged(false), tasks, 'auto')).toBe('fp32');
      // A task the check could not judge (a regression task, a single class in the holdout) keeps it in fp32.
      expect(initialPrecision(judged(true, ['click']), tasks, 'auto')).toBe('fp32');
      expect(initialPrecision({}, tasks, 'auto')).toBe('fp32');
    });

    it('refuses int8 without a check or past the tolerance, and versions that serve nothing', () => {
      expectError(() => planPrecision({ target: version(4, 'candidate') }, 4, 'int8'), ConflictError, /no int8 check/);
      expectError(
        () => planPrecision({ target: version(4, 'candidate', checked(false)) }, 4, 'int8'),
        ConflictError,
        /int8 cost 0\.004 of holdout AUC, more than the 0\.001 allowed/,
      );
      expectError(
        () => planPrecision({ target: version(5, 'archived', checked(true)) }, 5, 'int8'),
        ConflictError,
        /serves nothing/,
      );
      expectError(
        () => planPrecision({ target: version(6, 'candidate') }, 6, 'fp32'),
        ConflictError,
        /already served in fp32/,
      );
      expectError(() => planPrecision({}, 9, 'fp32'), NotFoundError, 'version 9 does not exist');
    });
  });

  describe('user features of versions served together', () => {
    const withClicks = (id: number, status: ModelStatus, task: string): ServedSpec => {
      const clicks = { name: 'user_clicks', type: 'sequence', hashBuckets: 8, maxLength: 3, fromEvents: { task } };
      return { id, status, spec: specOf({ spec: { ...SPEC, features: [...SPEC.features, clicks] } }) };
    };

    it('refuses a version starting to serve beside one that takes a user feature from another source', () => {
      const served = [withClicks(1, 'production', 'click'), withClicks(2, 'canary', 'like')];
      expectError(
        () => checkFeedClashes(served, new Set([1])),
        ConflictError,
        'version 2 cannot be served beside version 1 (in production): user_clicks comes from like events in ' +
          'version 2, from click events in version 1; a user stores one value per feature name, so rename it in one of them',
      );
      // Back in production by a rollback, beside the shadow.
      expectError(
        () => checkFeedClashes([withClicks(3, 'production', 'like'), withClicks(4, 'shadow', 'click')], new Set([4])),
        ConflictError,
        /^version 3 cannot be served beside version 4 \(the shadow\)/,
      );
    });

    it('lets versions that agree serve together, and a clash already served be undone', () => {
      expect(() =>
        checkFeedClashes([withClicks(1, 'production', 'click'), withClicks(2, 'canary', 'click')], new Set([1])),
      ).not.toThrow();
      expect(() => checkFeedClashes([withClicks(1, 'production', 'click')], new Set([1, 2]))).not.toThrow();
      // A stored spec that no longer parses cannot be compared: its version can still be served or taken off.
      const unparsed: ServedSpec = { id: 2, status: 'canary', spec: undefined };
      expect(() => checkFeedClashes([withClicks(1, 'production', 'click'), unparsed], new Set([1]))).not.toThrow();
      expect(() =>
        checkFeedClashes([withClicks(1, 'production', 'click'), withClicks(2, 'shadow', 'like')], new Set([1, 2])),
      ).not.toThrow();
    });
  });
});
