import { Inject, Injectable, Logger } from '@nestjs/common';

import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  ModelVersionRepository,
  RolloutRepository,
  type ModelVersionArtifact,
  type RolloutAction,
  type ServingPrecision,
  type ServingRecords,
} from '@app/db';
import type { ModelSpec, MultiTaskModel, TrainSummary } from '@app/mmoe';
import { renderTrainingReport, type TrainingReportData } from '@app/mmoe/report/training-report';
import {
  ArtifactError,
  decodeArtifact,
  loadTfjsLibrary,
  readArtifactHeader,
  servedEventFeeds,
  sha256Hex,
  type ArtifactHeader,
} from '@app/mmoe/serving';
import { withRedisDeadline } from '@app/redis';

import { ModelChangeRepository } from './model-change.repository';
import {
  readEvent,
  readLocked,
  readPage,
  readServing,
  readVersion,
  type LockedVersions,
  type ModelVersion,
  type RolloutEvent,
  type RolloutEvidence,
  type RolloutPage,
  type ServingVersions,
  type SkippedRun,
} from './model-version.reader';
import { checkRolloutPolicy, type PolicyDecision, type RolloutPolicy } from './rollout-policy.rules';
import {
  checkFeedClashes,
  initialPrecision,
  mergeObjectiveWeights,
  parsedSpecOf,
  planArchive,
  planCanary,
  planEndShadow,
  planInconclusive,
  planPrecision,
  planPromote,
  planReject,
  planRollback,
  planShadow,
  specOf,
  type ObjectiveWeights,
  type RankingChange,
  type RolloutPlan,
  type ServedSpec,
} from './rollout.rules';
import type { GateDecision, TaskMetricsByName, VersionMetrics } from './version-metrics';

/** What a new version records besides its model. */
export interface VersionDetails {
  objectiveWeights?: ObjectiveWeights;
  note?: string;
  parentVersionId?: number;
  /** The Bull job that trained it: at most one version per job (a unique index), found again by findByTrainingJob. */
  trainingJobId?: string;
  /** Replaces the validation report read from the training summary (a training job stores its held-out evaluation). */
  metrics?: VersionMetrics;
}

/** An uploaded artifact, as written by `cli train` (model.mmoe): validated by loading it. */
export interface RegisterVersion extends VersionDetails {
  artifact: Buffer;
}

/** A model this process has just trained: it is stored as it is, with its summary in the artifact's metadata. */
export interface TrainedVersion extends VersionDetails {
  training: TrainSummary;
  /**
   * The spec the version records, when the model was trained with another training section (a job's overrides):
   * what a later job taking this version's spec starts from. The model's own otherwise.
   */
  spec?: ModelSpec;
}

export interface TransitionResult extends ServingVersions {
  event: RolloutEvent;
}

export interface MetricComparison {
  metric: string;
  a: number | null;
  b: number | null;
  /** b − a, when both have the metric. */
  delta: number | null;
}

/** See policyTest(). */
export interface PolicyTestClock {
  /** The rollout event of the entry: the live comparison's epoch. */
  entered: { id: number; createdAt: Date };
  startedAt: Date;
  ended: boolean;
  /** The test's latest event (entry, policy set, inconclusive end): a decision applies only while it is still so. */
  eventId: number;
}

/** The events that start, restart or end a policy's test of a canary. */
const TEST_EVENTS = ['canary', 'policy', 'inconclusive'] as const;

export interface VersionComparison {
  a: ModelVersion;
  b: ModelVersion;
  tasks: { task: string; metrics: MetricComparison[] }[];
}

/** The row locks a transition's decision takes, inside its transaction. */
interface TransitionLocks {
  /** The serving versions and the version `id`, when given. */
  lock(id?: number): Promise<LockedVersions>;
  /** The latest event of each of `actions` entering version `versionId`, read in the transaction. */
  lastOfEach(versionId: number, actions: readonly RolloutAction[]): Promise<{ id: number; action: RolloutAction }[]>;
  /** The version `productionId` was promoted over, if any. */
  lockPreviousProduction(productionId: number): Promise<ModelVersion | undefined>;
}

/** The actor of every decision the rollout policy makes on its own. */
export const POLICY_ACTOR = 'policy';

/**
 * The one door to model versions for the API and the worker: reads, registration and the rollout transitions (each
 * announced after it commits). Nothing else reads or writes the model_versions table.
 */
@Injectable()
export class ModelRegistryService {
  private readonly logger = new Logger(ModelRegistryService.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly versions: ModelVersionRepository,
    private readonly rollouts: RolloutRepository,
    private readonly changes: ModelChangeRepository,
  ) {}

  async list(): Promise<ModelVersion[]> {
    return (await this.versions.list()).map(readVersion);
  }

  /** The version, or undefined when there is none with this id. */
  async find(id: number): Promise<ModelVersion | undefined> {
    const version = await this.versions.get(id);
    return version && readVersion(version);
  }

  async get(id: number): Promise<ModelVersion> {
    const version = await this.find(id);
    if (!version) throw new NotFoundError(`version ${id} does not exist`);
    return version;
  }

  /**
   * The training report of a version a worker trained (its metrics hold the training history and the held-out
   * evaluation), as one self-contained HTML page; rendered on request from what the version stores.
   */
  async trainingReport(id: number): Promise<string> {
    const version = await this.versions.getStored(id);
    if (!version) throw new NotFoundError(`version ${id} does not exist`);
    const data = reportDataOf(readVersion(version));
    if (!data) throw new NotFoundError(`version ${id} was not trained by a worker: it has no training report`);
    return renderTrainingReport(data);
  }

  /** The versions that serve now: production and the canary, when there are. */
  async findServing(): Promise<ServingVersions> {
    return readServing(await this.versions.findServing());
  }

  /** What a process loads to serve or evaluate a version (its artifact and ONNX export); undefined once it is gone. */
  findArtifact(id: number): Promise<ModelVersionArtifact | undefined> {
    return this.versions.getArtifact(id);
  }

  async compare(a: number, b: number): Promise<VersionComparison> {
    const [first, second] = await Promise.all([this.get(a), this.get(b)]);
    // Postgres returns jsonb keys reordered; list the tasks in spec order and each task's metrics by name.
    const tasks = [...specOf(first).tasks, ...specOf(second).tasks].map((task) => task.name);
    return { a: first, b: second, tasks: compareTasks(tasks, first.metrics.tasks ?? {}, second.metrics.tasks ?? {}) };
  }

  async findByTrainingJob(trainingJobId: string): Promise<ModelVersion | undefined> {
    const version = await this.versions.findByTrainingJob(trainingJobId);
    return version && readVersion(version);
  }

  /**
   * What a training job's gate came to once its steps were taken (a canary or policy refused after the gate passed),
   * in place of the gate's own decision: the version otherwise shows a canary decision while it stays a candidate.
   */
  async recordGateOutcome(id: number, gate: GateDecision): Promise<void> {
    if (!(await this.versions.recordGate(id, gate))) throw new NotFoundError(`version ${id} does not exist`);
  }

  /** The `skip` that an earlier attempt of training job `job` recorded, if any: the retried run is that skip. */
  async findSkippedRun(job: string): Promise<RolloutEvent | undefined> {
    const event = await this.rollouts.skipOf(job);
    return event && readEvent(event);
  }

  /**
   * The event that last made the version the canary: the start of its live comparison with production (a new
   * percent is a new split of the users, so a new comparison).
   */
  async canaryEntered(id: number): Promise<RolloutEvent | undefined> {
    const event = await this.rollouts.lastEntered(id, ['canary']);
    return event && readEvent(event);
  }

  /**
   * The clock of the policy's current test of the canary, read at once: the version's last entry as the canary (the
   * start of its live comparison with production; undefined if it never entered), when the test began — the later of
   * that entry and the policy's last setting, so that setting a policy again after an inconclusive end resumes the test
   * for another maxHours (the comparison's data still runs from the entry: a confidence sequence may go on being
   * read) — and whether the test ended inconclusive, the policy unchanged since.
   */
  async policyTest(id: number): Promise<PolicyTestClock | undefined> {
    const last = await this.rollouts.lastOfEach(id, TEST_EVENTS);
    const entered = last.find((e) => e.action === 'canary');
    if (!entered) return undefined;
    const latest = (actions: readonly string[]) =>
      last.filter((e) => actions.includes(e.action)).reduce((a, b) => (b.id > a.id ? b : a));
    const current = latest(TEST_EVENTS);
    return {
      entered: { id: entered.id, createdAt: entered.createdAt },
      startedAt: latest(['canary', 'policy']).createdAt,
      ended: current.action === 'inconclusive',
      eventId: current.id,
    };
  }

  async history(limit: number, offset: number): Promise<RolloutPage> {
    return readPage(await this.rollouts.list(limit, offset));
  }

  /** Validates the uploaded artifact by loading it, exports its network to ONNX and stores both as a new candidate. */
  async register(input: RegisterVersion, actor: string): Promise<ModelVersion> {
    await this.checkParent(input.parentVersionId);
    // Loading the upload takes tfjs, which an API serving through ONNX Runtime has not loaded until now.
    const { initBackend, MultiTaskModel } = await loadTfjsLibrary();
    await initBackend(this.config.MMOE_BACKEND);
    let model: MultiTaskModel;
    let header: ArtifactHeader;
    try {
      // The header first: its declared sizes are checked against the limit before any weight is decoded.
      const limits = { maxParameters: this.config.MODEL_MAX_PARAMETERS };
      header = readArtifactHeader(input.artifact, limits);
      model = MultiTaskModel.fromArtifact(input.artifact, limits);
    } catch (e) {
      throw new InvalidFieldsError([{ field: 'artifact', message: (e as Error).message }]);
    }
    try {
      return await this.store(model, input.artifact, input.metrics ?? metricsOf(header.metadata), input, actor);
    } finally {
      model.dispose();
    }
  }

  /**
   * Stores a model trained in this process as a new candidate: its artifact is written from the model held in memory
   * and its ONNX export made from that same network, never decoded back from the bytes just written. The caller keeps
   * the model (and disposes of it).
   */
  async registerTrained(model: MultiTaskModel, input: TrainedVersion, actor: string): Promise<ModelVersion> {
    await this.checkParent(input.parentVersionId);
    // As `cli train` writes it (metadata.training), plus the job that made it.
    const metadata = { training: input.training, trainingJobId: input.trainingJobId };
    const spec = input.spec ?? model.spec;
    return this.store(
      model,
      model.toArtifact(metadata, spec),
      input.metrics ?? metricsOf(metadata),
      input,
      actor,
      spec,
    );
  }

  private async checkParent(parentVersionId: number | undefined): Promise<void> {
    if (parentVersionId !== undefined && !(await this.versions.get(parentVersionId))) {
      throw new InvalidFieldsError([
        { field: 'parentVersionId', message: `version ${parentVersionId} does not exist` },
      ]);
    }
  }

  private async store(
    model: MultiTaskModel,
    artifact: Buffer,
    metrics: VersionMetrics,
    details: VersionDetails,
    actor: string,
    spec = model.spec,
  ): Promise<ModelVersion> {
    const onnx = Buffer.from(model.toOnnx());
    const registered = await this.versions.register(
      {
        spec,
        preprocessing: { ...model.network.preprocessing },
        metrics,
        artifact,
        artifactSha256: sha256Hex(artifact),
        onnx,
        onnxSha256: sha256Hex(onnx),
        objectiveWeights: mergeObjectiveWeights(model.spec, {}, details.objectiveWeights),
        parentVersionId: details.parentVersionId ?? null,
        trainingJobId: details.trainingJobId ?? null,
        note: details.note ?? null,
        servingPrecision: initialPrecision(metrics, model.spec.tasks, this.config.INT8_SERVING),
      },
      actor,
    );
    return readVersion(registered.version);
  }

  /** `job`: a training job's candidate (see planCanary). */
  async setCanary(
    id: number,
    percent: number,
    ranking: RankingChange | undefined,
    actor: string,
    job?: { judgedAgainst?: number | null },
  ): Promise<TransitionResult> {
    await this.checkServable(id);
    return this.transition(actor, async (tx) => planCanary(await tx.lock(id), id, percent, ranking, job));
  }

  promote(
    expectedId: number | undefined,
    ranking: RankingChange | undefined,
    actor: string,
  ): Promise<TransitionResult> {
    return this.transition(actor, async (tx) =>
      planPromote(await tx.lock(expectedId), new Date(), ranking, expectedId),
    );
  }

  async setShadow(id: number, percent: number, actor: string): Promise<TransitionResult> {
    await this.checkServable(id);
    return this.transition(actor, async (tx) => planShadow(await tx.lock(id), id, percent));
  }

  endShadow(id: number, actor: string): Promise<TransitionResult> {
    return this.transition(actor, async (tx) => planEndShadow(await tx.lock(id), id));
  }

  /**
   * A version whose artifact does not decode (one stored before weights were checked, holding the NaN of a diverged
   * training) is refused before it is served: every process would fail to load it and, until it left its role, keep
   * the models it had, missing every change after it. Versions are immutable, so the check holds once passed.
   */
  private async checkServable(id: number): Promise<void> {
    const stored = await this.versions.getArtifact(id);
    if (!stored) return; // the transition says it does not exist
    try {
      decodeArtifact(stored.artifact, { maxParameters: this.config.MODEL_MAX_PARAMETERS });
    } catch (e) {
      if (!(e instanceof ArtifactError)) throw e;
      throw new ConflictError(`version ${id} cannot be served: its artifact does not load (${e.message})`);
    }
  }

  /**
   * Stores (or, with null, clears) the policy that promotes or rejects the version on its own while it is the canary.
   * `once`: a training job's step, refused if the version has a policy already (set by an overlapping attempt of the
   * job, or by a person), rather than recorded twice or written over.
   */
  setRolloutPolicy(
    id: number,
    policy: RolloutPolicy | null,
    actor: string,
    options: { once?: boolean } = {},
  ): Promise<TransitionResult> {
    return this.transition(
      actor,
      async (tx) => {
        const { target } = await tx.lock(id);
        if (!target) throw new NotFoundError(`version ${id} does not exist`);
        if (options.once && target.rolloutPolicy) throw new ConflictError(`version ${id} has a rollout policy already`);
        if (target.status === 'archived' || target.status === 'failed' || target.status === 'production') {
          throw new ConflictError(
            `version ${id} is ${target.status}; a rollout policy applies to a version on its way to production`,
          );
        }
        if (policy) checkRolloutPolicy(specOf(target), policy);
        // Clearing none would record a change that changed nothing (setting one again resumes its test: a change).
        else if (!target.rolloutPolicy) throw new ConflictError(`version ${id} has no rollout policy`);
        return {
          updates: [{ id, patch: { rolloutPolicy: policy } }],
          event: { action: 'policy', fromVersionId: null, toVersionId: id, percent: target.canaryPercent },
        };
      },
      policy ? { policy } : { policy: null },
    );
  }

  /**
   * Carries out the rollout policy's verdict on the canary `canaryId`, as actor `policy`, with its evidence in the
   * history: promote, reject (canary off, version archived), or record that the test ended inconclusive (the canary
   * stays as it is). A 409 if the canary changed since the check.
   */
  applyPolicyDecision(
    canaryId: number,
    decision: PolicyDecision & { verdict: 'promote' | 'reject' | 'inconclusive' },
    testEventId: number,
  ): Promise<TransitionResult> {
    const plan = {
      promote: (locked: LockedVersions) => planPromote(locked, new Date(), undefined, canaryId),
      reject: (locked: LockedVersions) => planReject(locked, canaryId),
      inconclusive: (locked: LockedVersions) => planInconclusive(locked, canaryId),
    }[decision.verdict];
    return this.transition(
      POLICY_ACTOR,
      async (tx) => {
        const locked = await tx.lock(canaryId);
        // Under the canary's lock, no other transition of it can record an event: the test the decision was made on
        // (its policy, its entry, not yet ended) must still be the current one.
        const current = (await tx.lastOfEach(canaryId, TEST_EVENTS)).reduce((id, e) => Math.max(id, e.id), 0);
        if (current !== testEventId)
          throw new ConflictError(
            `the test of canary ${canaryId} changed while it was checked (event ${current}, not ${testEventId}): the next check decides`,
          );
        return plan(locked);
      },
      decision,
    );
  }

  /**
   * Records that a scheduled training run continuing `versionId` had nothing to train on: a `skip` event, nothing else
   * changed (a quiet hour shows in the history as such, not as a gap or a failure), so no process is told of it. Once
   * per job: a retried attempt (the first died after recording) gets the first record back, under the rollout lock.
   */
  async recordSkippedRun(versionId: number, skipped: SkippedRun, actor: string): Promise<RolloutEvent> {
    const event = await this.versions.transition(
      async (tx) =>
        (await tx.skipOf(skipped.job)) ??
        tx.record({
          action: 'skip',
          actor,
          fromVersionId: null,
          toVersionId: versionId,
          percent: null,
          evidence: { skipped },
        }),
    );
    return readEvent(event);
  }

  rollback(actor: string): Promise<TransitionResult> {
    return this.transition(actor, async (tx) => {
      const locked = await tx.lock();
      const previous = locked.production && (await tx.lockPreviousProduction(locked.production.id));
      return planRollback(locked, previous, new Date());
    });
  }

  /** Every serving process rebuilds the version's graph in `precision` (planPrecision says when int8 may be). */
  setServingPrecision(id: number, precision: ServingPrecision, actor: string): Promise<TransitionResult> {
    return this.transition(actor, async (tx) => planPrecision(await tx.lock(id), id, precision), { precision });
  }

  archive(id: number, actor: string): Promise<TransitionResult> {
    return this.transition(actor, async (tx) => planArchive(await tx.lock(id), id));
  }

  private async transition(
    actor: string,
    decide: (locks: TransitionLocks) => Promise<RolloutPlan>,
    evidence?: RolloutEvidence,
  ): Promise<TransitionResult> {
    const event = await this.versions.transition(async (tx) => {
      const plan = await decide({
        lock: async (id) => readLocked(await tx.lock(id)),
        lastOfEach: (versionId, actions) => tx.lastOfEach(versionId, actions),
        lockPreviousProduction: async (productionId) => {
          const previous = await tx.lockPreviousProduction(productionId);
          return previous && readVersion(previous);
        },
      });
      // What is served before and after a change of roles, under the rollout lock: the fills follow the feeds the
      // change starts and stops serving.
      const moves = plan.updates.some(({ patch }) => patch.status !== undefined);
      if (moves) await tx.lockServedSet();
      const before = moves ? servedSpecs(await tx.lock()) : undefined;
      for (const { id, patch } of plan.updates) await tx.update(id, patch);
      if (before) {
        const served = servedSpecs(await tx.lock());
        checkFeedClashes(served, new Set(before.map((v) => v.id)));
        const feeds = (versions: ServedSpec[]) => servedEventFeeds(versions.flatMap((v) => v.spec ?? []));
        // A served spec that no longer parses has feeds no one can tell: none is forgotten (a reset is always safe).
        await tx.syncFeedFills(
          feeds(before),
          feeds(served),
          served.every((v) => v.spec),
        );
      }
      return readEvent(await tx.record({ ...plan.event, actor, evidence }));
    });
    // The change is committed whatever Redis says (down, or not answering: the deadline); a process that misses the
    // notice catches up at its next poll.
    await withRedisDeadline(
      this.changes.publish({ action: event.action, versionId: event.toVersionId ?? event.fromVersionId }),
    ).catch((e: Error) =>
      this.logger.warn(`models:changed not published (${e.message}); processes will catch up by polling`),
    );
    return { event, ...(await this.findServing()) };
  }
}

/** The versions served (production first, then the canary and the shadow), each with its spec if it still parses. */
function servedSpecs({ production, canary, shadow }: ServingRecords): ServedSpec[] {
  return [production, canary, shadow].flatMap((v) =>
    v ? [{ id: v.id, status: v.status, spec: parsedSpecOf(v) }] : [],
  );
}

/**
 * `cli train` keeps its validation report under metadata.training; the per-epoch history stays in the artifact only.
 * An upload's metadata is whatever its file holds: a report whose tasks are not metrics by task is left out.
 */
function metricsOf(metadata: ArtifactHeader['metadata']): VersionMetrics {
  const { valid, bestEpoch, epochsRun, stoppedEarly } = (metadata?.training ?? {}) as Partial<TrainSummary>;
  if (!valid || !isTaskMetrics(valid.tasks)) return {};
  return { tasks: valid.tasks, gates: valid.gates, examples: valid.examples, bestEpoch, epochsRun, stoppedEarly };
}

function isTaskMetrics(value: unknown): value is TaskMetricsByName {
  const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v);
  return isObject(value) && Object.values(value).every(isObject);
}

function compareTasks(tasks: string[], a: TaskMetricsByName, b: TaskMetricsByName): VersionComparison['tasks'] {
  const value = (metrics: Record<string, number> | undefined, name: string): number | null => {
    const v = metrics?.[name];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  return [...new Set([...tasks, ...Object.keys(a), ...Object.keys(b)])].map((task) => ({
    task,
    metrics: [...new Set([...Object.keys(a[task] ?? {}), ...Object.keys(b[task] ?? {})])].sort().map((metric) => {
      const [x, y] = [value(a[task], metric), value(b[task], metric)];
      return { metric, a: x, b: y, delta: x !== null && y !== null ? y - x : null };
    }),
  }));
}

/** What a worker stores in a version's metrics, read back for its report; undefined for an uploaded version. */
function reportDataOf(version: ModelVersion): TrainingReportData | undefined {
  const { training, tasks, gates, calibration, examples, productionHoldout, gate } = version.metrics;
  if (!training?.history || !tasks) return undefined;
  return {
    title: `Model version ${version.id}${version.trainingJobId ? ` — training job ${version.trainingJobId}` : ''}`,
    spec: specOf(version),
    parameters: training.parameters ?? NaN,
    backend: training.backend ?? 'unknown',
    rows: {
      train: training.rows - (training.validationRows ?? 0),
      validation: training.validationRows,
      holdout: examples,
    },
    training,
    evaluatedOn: 'the held-out slice',
    tasks,
    gates: gates ?? {},
    calibration: calibration ?? {},
    production: productionHoldout,
    gate,
    vocabularyOverflow: training.vocabularyOverflow,
    createdAt: version.createdAt.toISOString(),
  };
}
