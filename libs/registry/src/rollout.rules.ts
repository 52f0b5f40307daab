import { isDeepStrictEqual } from 'node:util';

import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import type { ModelStatus, ModelVersionPatch, NewRolloutEvent, ServingPrecision } from '@app/db';
import { feedClashes, parseModelSpec, servedEventFeeds, type EventFeed, type ModelSpec } from '@app/mmoe/serving';

import { parseFusion, type FusionRule } from './fusion.rules';
import type { LockedVersions, ModelVersion } from './model-version.reader';
import type { VersionMetrics } from './version-metrics';

/** What one transition changes, decided from the locked rows; nothing here touches the database. */
export interface RolloutPlan {
  /** Applied in order: a version leaves its role before another takes it (one production, one canary at a time). */
  updates: { id: number; patch: ModelVersionPatch }[];
  event: Omit<NewRolloutEvent, 'actor'>;
}

export type ObjectiveWeights = Record<string, number>;

/** How a transition may change a version's ranking: new objective weights (a sum), or a whole fusion rule. */
export interface RankingChange {
  objectiveWeights?: ObjectiveWeights;
  /** Unparsed JSON from the request body: validated here against the version's tasks. */
  fusion?: unknown;
}

const STATUS_PHRASES: Record<ModelStatus, string> = {
  candidate: 'a candidate',
  shadow: 'the shadow',
  canary: 'the canary',
  production: 'in production',
  archived: 'archived',
  failed: 'a failed version',
};

export function specOf(version: Pick<ModelVersion, 'spec'>): ModelSpec {
  return parseModelSpec(version.spec);
}

/**
 * `given` overrides `current` task by task, and a task in neither keeps its spec weight (the default blend); a name
 * that is not one of the spec's tasks is an invalid field naming it.
 */
export function mergeObjectiveWeights(
  spec: ModelSpec,
  current: ObjectiveWeights,
  given: ObjectiveWeights = {},
): ObjectiveWeights {
  assertKnownTasks(
    spec.tasks.map((task) => task.name),
    given,
  );
  return Object.fromEntries(
    spec.tasks.map((task) => [task.name, given[task.name] ?? current[task.name] ?? task.weight]),
  );
}

/** Objective weights may name only the model's tasks: anything else is an invalid field named `objectiveWeights.<name>`. */
export function assertKnownTasks(tasks: readonly string[], weights: ObjectiveWeights): void {
  const unknown = Object.keys(weights).filter((name) => !tasks.includes(name));
  if (unknown.length > 0) {
    throw new InvalidFieldsError(
      unknown.map((name) => ({
        field: `objectiveWeights.${name}`,
        message: `objectiveWeights.${name} is not a task of the model (${tasks.join(', ')})`,
      })),
    );
  }
}

/**
 * The columns a ranking change sets: objective weights merge into the current ones (a sum; any product rule is
 * dropped), a sum rule replaces them as a whole (a task left out weighs 0), a product rule is stored as it is.
 */
export function rankingPatch(version: ModelVersion, change: RankingChange | undefined): ModelVersionPatch {
  if (!change || (change.objectiveWeights === undefined && change.fusion === undefined)) return {};
  if (change.objectiveWeights !== undefined && change.fusion !== undefined) {
    throw new InvalidFieldsError([
      { field: 'fusion', message: 'fusion and objectiveWeights cannot both be given (a sum rule holds its weights)' },
    ]);
  }
  const spec = specOf(version);
  if (change.objectiveWeights !== undefined) {
    return {
      objectiveWeights: mergeObjectiveWeights(spec, version.objectiveWeights, change.objectiveWeights),
      fusion: null,
    };
  }
  const rule = parseFusion(change.fusion, spec.tasks);
  if (rule.type === 'product') return { fusion: rule };
  return {
    objectiveWeights: Object.fromEntries(spec.tasks.map((t) => [t.name, rule.weights[t.name] ?? 0])),
    fusion: null,
  };
}

/** The rule a version ranks by: its stored product rule, else the weighted sum of its objective weights. */
export function fusionOf(
  version: Pick<ModelVersion, 'fusion' | 'objectiveWeights'>,
  spec: Pick<ModelSpec, 'tasks'>,
): FusionRule {
  return version.fusion ? parseFusion(version.fusion, spec.tasks) : { type: 'sum', weights: version.objectiveWeights };
}

function required(version: ModelVersion | undefined, id: number): ModelVersion {
  if (!version) throw new NotFoundError(`version ${id} does not exist`);
  return version;
}

function conflict(version: ModelVersion, why: string): ConflictError {
  return new ConflictError(`version ${version.id} is ${STATUS_PHRASES[version.status]}; ${why}`);
}

/**
 * A candidate or the shadow becomes the canary (replacing the current one, which goes back to candidate), or the
 * canary changes its percent. `job`, for a training job's candidate, refuses a version that is no longer a candidate
 * (two overlapping attempts of one job would otherwise record the step twice); it also refuses when the job's gate
 * judgement no longer holds (production, null for none, is no longer the one it judged against, when known: a
 * rollback or a promote since) or another version is the canary: a job does not cut short a canary's live test, and
 * jobs of one cadence from one production would otherwise replace each other's canary at every run.
 */
export function planCanary(
  locked: LockedVersions,
  id: number,
  percent: number,
  ranking?: RankingChange,
  job?: { judgedAgainst?: number | null },
): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status !== 'candidate' && target.status !== 'shadow' && target.status !== 'canary') {
    throw conflict(
      target,
      target.status === 'failed'
        ? 'failed versions can only be archived'
        : 'only a candidate or the shadow can become the canary',
    );
  }
  const lacking = tasksLacking(target, locked.production);
  if (lacking.length > 0)
    throw conflict(
      target,
      `it does not score production's ${lacking.length > 1 ? 'tasks' : 'task'} ${lacking.join(', ')}: its users' ` +
        'answers would lack them, and a request naming one in its objectiveWeights or fusion would be refused',
    );
  if (job) {
    // A job's step is taken once: another attempt of the job (or a person) has moved its version on since it read it.
    if (target.status !== 'candidate') throw conflict(target, 'a training job makes its candidate the canary, once');
    const production = locked.production?.id ?? null;
    if (job.judgedAgainst !== undefined && job.judgedAgainst !== production)
      throw conflict(
        target,
        `it was judged against ${job.judgedAgainst === null ? 'no production' : `production ${job.judgedAgainst}`}, ` +
          `and production is ${production === null ? 'none' : `version ${production}`} now`,
      );
    if (locked.canary && locked.canary.id !== id)
      throw conflict(target, `version ${locked.canary.id} is the canary, and a training job does not replace it`);
  }
  const reranked = rankingPatch(target, ranking);
  // A call that changes nothing (a client's retry, its ranking sent again) would still start a new live test,
  // discarding the evidence the rollout policy has gathered: refused, as a precision it already has is.
  const unchanged = (Object.keys(reranked) as (keyof ModelVersionPatch)[]).every((key) =>
    isDeepStrictEqual(reranked[key], target[key as keyof ModelVersion]),
  );
  if (target.status === 'canary' && target.canaryPercent === percent && unchanged)
    throw conflict(target, `it already serves ${percent} % of users (a new percent or ranking is a new live test)`);
  const patch: ModelVersionPatch = { status: 'canary', canaryPercent: percent, ...reranked };
  if (target.status === 'shadow') patch.shadowPercent = null;
  const replaced = locked.canary && locked.canary.id !== id ? locked.canary : undefined;
  return {
    updates: [
      ...(replaced ? [{ id: replaced.id, patch: { status: 'candidate' as const, canaryPercent: null } }] : []),
      { id, patch },
    ],
    event: { action: 'canary', fromVersionId: locked.canary?.id ?? null, toVersionId: id, percent },
  };
}

/**
 * The canary becomes production; the production it replaces is archived and stays the rollback target (the promote
 * event remembers it). `expectedId`, when given, must be the canary: the operator says what they believe they promote.
 */
export function planPromote(
  locked: LockedVersions,
  at: Date,
  ranking?: RankingChange,
  expectedId?: number,
): RolloutPlan {
  if (expectedId !== undefined) {
    const target = required(locked.target, expectedId);
    if (target.status !== 'canary') throw conflict(target, 'only the canary can be promoted');
  }
  const { canary, production } = locked;
  if (!canary) throw new ConflictError('there is no canary to promote; make a candidate the canary first');
  const patch: ModelVersionPatch = {
    status: 'production',
    canaryPercent: null,
    promotedAt: at,
    ...rankingPatch(canary, ranking),
  };
  return {
    updates: [
      ...(production ? [{ id: production.id, patch: { status: 'archived' as const } }] : []),
      { id: canary.id, patch },
    ],
    event: { action: 'promote', fromVersionId: production?.id ?? null, toVersionId: canary.id, percent: null },
  };
}

/**
 * Production is archived and the version it was promoted over serves again; any canary goes back to candidate, and so
 * does a shadow that takes a user feature from another source than that version (checkFeedClashes would refuse them
 * side by side): the way back is not blocked by a background experiment.
 */
export function planRollback(locked: LockedVersions, previous: ModelVersion | undefined, at: Date): RolloutPlan {
  const { production, canary, shadow } = locked;
  if (!production) throw new ConflictError('there is no production version to roll back');
  if (!previous)
    throw new ConflictError(
      `version ${production.id} was not promoted over another version; there is nothing to roll back to`,
    );
  const clashing = shadow && clash(previous, shadow) ? shadow : undefined;
  return {
    updates: [
      ...(canary ? [{ id: canary.id, patch: { status: 'candidate' as const, canaryPercent: null } }] : []),
      ...(clashing ? [{ id: clashing.id, patch: { status: 'candidate' as const, shadowPercent: null } }] : []),
      { id: production.id, patch: { status: 'archived' } },
      { id: previous.id, patch: { status: 'production', canaryPercent: null, promotedAt: at } },
    ],
    event: { action: 'rollback', fromVersionId: production.id, toVersionId: previous.id, percent: null },
  };
}

/**
 * A candidate becomes the shadow (replacing the current one, which goes back to candidate), or the shadow changes
 * its share of requests. The shadow scores in the background only, so it may run beside a canary.
 */
export function planShadow(locked: LockedVersions, id: number, percent: number): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status !== 'candidate' && target.status !== 'shadow') {
    throw conflict(
      target,
      target.status === 'failed' ? 'failed versions can only be archived' : 'only a candidate can become the shadow',
    );
  }
  if (target.status === 'shadow' && target.shadowPercent === percent)
    throw conflict(target, `it already scores ${percent} % of requests`);
  const replaced = locked.shadow && locked.shadow.id !== id ? locked.shadow : undefined;
  return {
    updates: [
      ...(replaced ? [{ id: replaced.id, patch: { status: 'candidate' as const, shadowPercent: null } }] : []),
      { id, patch: { status: 'shadow', shadowPercent: percent } },
    ],
    event: { action: 'shadow', fromVersionId: locked.shadow?.id ?? null, toVersionId: id, percent },
  };
}

/** The shadow stops scoring and is a candidate again (what it logged stays, measured as before). */
export function planEndShadow(locked: LockedVersions, id: number): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status !== 'shadow') throw conflict(target, 'only the shadow can stop shadowing');
  return {
    updates: [{ id, patch: { status: 'candidate', shadowPercent: null } }],
    event: { action: 'shadow', fromVersionId: id, toVersionId: null, percent: null },
  };
}

/**
 * Production's tasks a version does not score (none when either spec no longer parses): a canary serves some users in
 * production's place, so it must answer for each of its tasks (it may add others). A model of other data (an upload of
 * the CLI's census example) went to 10 % of users, every task of theirs gone.
 */
function tasksLacking(version: ModelVersion, production: ModelVersion | undefined): string[] {
  const [ours, theirs] = [parsedSpecOf(version), production && parsedSpecOf(production)];
  if (!ours || !theirs) return [];
  const scored = new Set(ours.tasks.map((t) => t.name));
  return theirs.tasks.map((t) => t.name).filter((name) => !scored.has(name));
}

/**
 * The version's spec, or undefined when its stored spec no longer parses (stored by earlier code): a transition must
 * still be able to take such a version off.
 */
export function parsedSpecOf(version: Pick<ModelVersion, 'spec'>): ModelSpec | undefined {
  try {
    return specOf(version);
  } catch {
    return undefined;
  }
}

/**
 * The event-fed lists of stored specs served together, production's first (servedEventFeeds); a spec that no longer
 * parses feeds none.
 */
export function storedSpecFeeds(specs: readonly ModelVersion['spec'][]): EventFeed[] {
  return servedEventFeeds(specs.flatMap((spec) => parsedSpecOf({ spec }) ?? []));
}

/** Whether two versions take a user feature from different sources (feedClashes); not when a spec no longer parses. */
function clash(a: ModelVersion, b: ModelVersion): boolean {
  const [x, y] = [parsedSpecOf(a), parsedSpecOf(b)];
  return x !== undefined && y !== undefined && feedClashes(x, y).length > 0;
}

/** A version served, and its spec (undefined when its stored spec no longer parses). */
export interface ServedSpec {
  id: number;
  status: ModelStatus;
  spec: ModelSpec | undefined;
}

/**
 * Refuses a change that starts serving a version (canary, shadow, production again) beside one it clashes with on a
 * user feature (feedClashes): one would read the list the other's events feed, or lose its own to them. `served` is
 * after the change, `before` the ids served before it; a clash among versions already served is left to be undone.
 */
export function checkFeedClashes(served: readonly ServedSpec[], before: ReadonlySet<number>): void {
  for (const joined of served.filter((v) => !before.has(v.id)))
    for (const other of served.filter((v) => v !== joined)) {
      if (!joined.spec || !other.spec) continue;
      const clashes = feedClashes(joined.spec, other.spec);
      if (clashes.length === 0) continue;
      const from = ({ feature, sources: [ours, theirs] }: (typeof clashes)[number]) =>
        `${feature} comes from ${ours} in version ${joined.id}, from ${theirs} in version ${other.id}`;
      throw new ConflictError(
        `version ${joined.id} cannot be served beside version ${other.id} (${STATUS_PHRASES[other.status]}): ` +
          `${clashes.map(from).join('; ')}; a user stores one value per feature name, so rename it in one of them`,
      );
    }
}

/** The canary is taken off and archived: it lost on live traffic (the rollout policy's verdict, or a person's). */
export function planReject(locked: LockedVersions, id: number): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status !== 'canary') throw conflict(target, 'only the canary can be rejected');
  return {
    updates: [{ id, patch: { status: 'archived', canaryPercent: null } }],
    event: { action: 'reject', fromVersionId: id, toVersionId: null, percent: null },
  };
}

/** The rollout policy's test of the canary ended without a decision: recorded, nothing changes. */
export function planInconclusive(locked: LockedVersions, id: number): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status !== 'canary') throw conflict(target, 'only a test of the canary can end inconclusive');
  return {
    updates: [],
    event: { action: 'inconclusive', fromVersionId: null, toVersionId: id, percent: target.canaryPercent },
  };
}

/** Candidates, the canary and failed versions can be archived; production only leaves by promote or rollback. */
export function planArchive(locked: LockedVersions, id: number): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status === 'production')
    throw conflict(target, 'promote another version or roll back before archiving it');
  if (target.status === 'archived') throw conflict(target, 'there is nothing to do');
  return {
    updates: [
      {
        id,
        patch: { status: 'archived', canaryPercent: null, ...(target.status === 'shadow' && { shadowPercent: null }) },
      },
    ],
    event: { action: 'archive', fromVersionId: id, toVersionId: null, percent: null },
  };
}

/**
 * The precision a new version is served in. With `auto` (INT8_SERVING), int8 when its holdout check passed and judged
 * every one of its tasks (a regression task, or a binary one with a single class in the holdout, has no AUC to
 * judge it by: such a version starts in fp32, and only an admin may switch it); fp32 otherwise.
 */
export function initialPrecision(
  metrics: VersionMetrics,
  tasks: readonly { name: string }[],
  policy: 'auto' | 'off',
): ServingPrecision {
  const check = metrics.int8;
  const judged = check?.eligible === true && tasks.every((task) => check.auc[task.name] !== undefined);
  return policy === 'auto' && judged ? 'int8' : 'fp32';
}

/**
 * The precision the version's serving graph is built in. fp32 always; int8 only when the worker's check on the
 * version's holdout (metrics.int8, see checkInt8) found its AUC within the tolerance of fp32's. Serving processes
 * rebuild the graph on the change; archived and failed versions serve nothing.
 */
export function planPrecision(locked: LockedVersions, id: number, precision: ServingPrecision): RolloutPlan {
  const target = required(locked.target, id);
  if (target.status === 'archived' || target.status === 'failed') throw conflict(target, 'it serves nothing');
  if (target.servingPrecision === precision) throw conflict(target, `it is already served in ${precision}`);
  if (precision === 'int8') {
    const check = target.metrics.int8;
    if (!check) throw conflict(target, 'it has no int8 check on a holdout (versions trained by a worker have one)');
    if (!check.eligible) {
      throw conflict(
        target,
        `int8 cost ${check.maxAucDrop} of holdout AUC, more than the ${check.tolerance} allowed; it stays fp32`,
      );
    }
  }
  return {
    updates: [{ id, patch: { servingPrecision: precision } }],
    event: { action: 'precision', fromVersionId: null, toVersionId: id, percent: null },
  };
}
