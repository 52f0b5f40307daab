import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Job } from 'bull';

import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  ArtifactError,
  checkInt8,
  initBackend,
  loadOnnxRuntime,
  MultiTaskModel,
  parseModelSpec,
  SpecValidationError,
  warmStartDifferences,
  type EncodedDataset,
  type ModelSpec,
  type TrainedModel,
} from '@app/mmoe';
import { overflowText } from '@app/mmoe/report/training-report';
import {
  parseJobData,
  scheduledIncrementalPayload,
  scheduledRetrainPayload,
  TrainingCancellationRepository,
  TrainingJobName,
  trainingJobPayload,
  type CsvSource,
  type EventsSource,
  type SkippedTrainingRun,
  type TrainingJobOutcome,
  type TrainingJobPayload,
  type TrainingJobResult,
} from '@app/queue';
import {
  checkRolloutPolicyField,
  continuationOf,
  ModelRegistryService,
  parsedSpecOf,
  specOf,
  type ModelVersion,
  type RolloutPolicy,
  type TrainedMetrics,
} from '@app/registry';

import {
  checkGroups,
  checkTables,
  featuresMissing,
  groupByOf,
  holdoutFractionOf,
  holdsValidation,
} from './dataset.rules';
import { decideRollout, weightingDifference, type ProductionBaseline } from './evaluation-gate.rules';
import { incrementalPlan, type IncrementalPlan } from './incremental-window.rules';
import { JobProgressThrottle } from './job-progress.throttle';
import { JobWatch } from './job-watch';
import { MIN_REFIT_ROWS, refitOf, refitOnHoldout } from './refit.rules';
import { TrainingDataService, type TrainingData } from './training-data.service';
import { asInputError, EmptyWindowError, TrainingInputError } from './training.errors';

const ACTOR = 'worker';
const DAY_MS = 86_400_000;

/** What finishing a job reads of the metrics its version records. */
type JobOutcome = Pick<TrainedMetrics, 'gate' | 'tasks' | 'productionHoldout' | 'examples' | 'training'>;

/** The model a job registers, and its refit on the held-out slice when it had one. */
interface Served {
  model: MultiTaskModel;
  refit?: TrainedModel['summary'];
}

interface PreparedJob {
  payload: TrainingJobPayload;
  holdoutFraction: number;
  groupBy: string | undefined;
  production: ModelVersion | undefined;
  parent: ModelVersion | undefined;
  /** The parent's model, loaded, when the job warm-starts from it. */
  parentModel: MultiTaskModel | undefined;
  /** What the job trains with: `recordedSpec` with the job's training overrides. */
  spec: ModelSpec;
  /**
   * What the version records, without the job's overrides: a later job taking its spec (a scheduled full retrain takes
   * production's) would otherwise inherit an incremental job's one epoch.
   */
  recordedSpec: ModelSpec;
  /** The data source with an incremental window resolved. */
  source: EventsSource | CsvSource;
  /** Where the lineage's events start (events only): the version records it for its descendants' replay. */
  historyFrom?: string;
  replay?: { from: string; to: string };
  /** The late events' range (an incremental job whose parent recorded its snapshot). */
  late?: { from: string; to: string };
  data: TrainingData;
}

/**
 * One training job, start to finish: data → train → evaluate the candidate, and production, on the later held-out
 * slice → register the version (artifact, ONNX export, metrics) as a candidate in one transaction → canary if the gate
 * passes. Nothing is written before that transaction, so a worker killed on the way leaves no trace but the job.
 */
@Injectable()
export class TrainingJobService {
  private readonly logger = new Logger(TrainingJobService.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
    private readonly data: TrainingDataService,
    private readonly cancellations: TrainingCancellationRepository,
  ) {}

  /** Whether a job has this process's wasm memory to itself (see asInputError). */
  private get inputs(): { soleJob: boolean } {
    return { soleJob: this.config.WORKER_CONCURRENCY === 1 };
  }

  async run(job: Job<unknown>): Promise<TrainingJobOutcome> {
    // Before anything else: a job that does not match the queue contract, whoever queued it, fails here with its
    // fields named (a domain error, so that the processor does not retry it).
    const payload = payloadOf(job);
    const jobId = String(job.id);
    const registered = await this.registry.findByTrainingJob(jobId);
    if (registered) return this.resume(job, registered, payload);
    // An earlier attempt recorded a skip and died before the job completed: that is the run's outcome, even if events
    // stored late since would give this attempt something to train (the history would show a skip and a version).
    const skipped = await this.registry.findSkippedRun(jobId);
    if (skipped && skipped.createdAt.getTime() < job.timestamp) throw repeatedJobId(jobId, `skip ${skipped.id}`);
    if (skipped?.evidence && 'skipped' in skipped.evidence) {
      const { reason, window } = skipped.evidence.skipped;
      return { skipped: { reason, parentVersionId: skipped.toVersionId!, window } };
    }
    const watch = new JobWatch(job, this.config.TRAINING_LOCK_SECONDS * 1000, () =>
      this.cancellations.isCancelled(jobId),
    );
    await watch.confirm();
    const progress = new JobProgressThrottle((p) => {
      job.progress(p).catch((e: Error) => this.logger.warn(`job ${jobId}: progress not saved (${e.message})`));
    });

    progress.phase('dataset');
    const prepared = await this.prepare(payload).catch((e: unknown) => {
      if (e instanceof EmptyWindowError && job.name === TrainingJobName.ScheduledIncremental) return e;
      throw e;
    });
    if (prepared instanceof EmptyWindowError) return this.skip(jobId, prepared);
    try {
      return await this.trainAndRegister(jobId, prepared, watch, progress);
    } finally {
      prepared.parentModel?.dispose();
    }
  }

  private async trainAndRegister(
    jobId: string,
    prepared: PreparedJob,
    watch: JobWatch,
    progress: JobProgressThrottle,
  ): Promise<TrainingJobResult> {
    const { spec, data: tables } = prepared;
    const start = prepared.parentModel ? `warm-starting from version ${prepared.parent!.id}, ` : '';
    this.logger.log(
      `job ${jobId}: ${start}training on ${tables.train.size} rows (${tables.replayed} replayed), holding out ${tables.holdout.size} later rows (${tables.skipped} unreadable left out)`,
    );

    const refits = this.refits(jobId, prepared);
    progress.phase('training');
    const { model, summary } = await MultiTaskModel.train(spec, tables.train, undefined, {
      onProgress: (p) => progress.training(p),
      shouldStop: watch.shouldStop,
      threads: this.config.TRAINING_THREADS,
      parent: prepared.parentModel,
      keepOptimizer: refits, // the refit goes on with it
      holdValidation: holdsValidation(prepared.payload),
    }).catch((e: unknown) => {
      throw watch.cause(asInputError(e, this.inputs));
    });
    this.warnOverflow(jobId, summary);
    let served: Served = { model };
    try {
      checkFinite(model);
      progress.phase('evaluating');
      const judged = await this.evaluate(model, summary, prepared);
      if (refits) {
        progress.phase('refitting');
        served = await this.refit(jobId, model, prepared, watch);
        // Nothing reads the judged candidate any more: its weights and Adam state go before the int8 check's export.
        if (served.model !== model) model.dispose();
      }
      if (served.model !== model) checkFinite(served.model);
      const metrics = await this.servedMetrics(judged, served, prepared);

      progress.phase('registering');
      await watch.confirm();
      const version = await this.registry.registerTrained(
        served.model,
        {
          training: summary,
          spec: prepared.recordedSpec,
          parentVersionId: prepared.parent?.id,
          trainingJobId: jobId,
          metrics,
          note:
            `trained by job ${jobId} (${prepared.payload.requestedBy})` +
            (prepared.parentModel ? `, warm-started from version ${prepared.parent!.id}` : ''),
        },
        ACTOR,
      );
      this.logger.log(
        `job ${jobId}: registered version ${version.id} after ${summary.seconds.toFixed(1)} s of training; gate: ${metrics.gate.reason}`,
      );
      return await this.finish(version, metrics, prepared.payload.rolloutPolicy, prepared.production?.id ?? null);
    } finally {
      model.dispose(); // again after a refit: a no-op
      if (served.model !== model) served.model.dispose();
    }
  }

  /** Recorded in metrics.training too: a full table is no failure, but its new ids score as unseen ones. */
  private warnOverflow(jobId: string, summary: TrainedModel['summary']): void {
    if (summary.vocabularyOverflow.length > 0)
      this.logger.warn(`job ${jobId}: ${overflowText(summary.vocabularyOverflow)}; raise maxVocab to make room`);
  }

  /** Whether the judged candidate will be refitted (refitOf); warns when asked to but the slice is too small. */
  private refits(jobId: string, { payload, data }: PreparedJob): boolean {
    const refit = refitOf(payload, this.config.TRAINING_REFIT, data.holdout.size);
    if (refit === 'too few')
      this.logger.warn(
        `job ${jobId}: no refit on ${data.holdout.size} held-out rows (fewer than ${MIN_REFIT_ROWS}); the judged candidate is kept as it is`,
      );
    return refit === 'refit';
  }

  /** The judged candidate trained one epoch more on the held-out slice (refitOnHoldout); the candidate is kept. */
  private async refit(jobId: string, candidate: MultiTaskModel, job: PreparedJob, watch: JobWatch): Promise<Served> {
    const { model, summary } = await refitOnHoldout(candidate, job.data.holdout, {
      shouldStop: watch.shouldStop,
      threads: this.config.TRAINING_THREADS,
    }).catch((e: unknown) => {
      throw watch.cause(asInputError(e, this.inputs));
    });
    this.warnOverflow(jobId, summary);
    this.logger.log(
      `job ${jobId}: refitted on the ${job.data.holdout.size} held-out rows in ${summary.seconds.toFixed(1)} s`,
    );
    return { model, refit: summary };
  }

  /**
   * A scheduled incremental run with no new event since production's data, or too few to train on: nothing to train,
   * which is no failure to retry. Recorded as a `skip` in the rollout history (a retry of the job records it again
   * only if the first record was lost with the attempt).
   */
  private async skip(jobId: string, empty: EmptyWindowError): Promise<SkippedTrainingRun> {
    const skipped = { reason: empty.message, parentVersionId: empty.parentVersionId, window: empty.window };
    await this.registry.recordSkippedRun(
      empty.parentVersionId,
      { job: jobId, reason: empty.message, window: empty.window },
      ACTOR,
    );
    this.logger.log(`job ${jobId}: skipped: ${empty.message}`);
    return { skipped };
  }

  /** An earlier attempt committed its version and died before finishing the job: finish from what it stored. */
  private resume(job: Job, registered: ModelVersion, payload: TrainingJobPayload): Promise<TrainingJobResult> {
    if (registered.createdAt.getTime() < job.timestamp) throw repeatedJobId(String(job.id), `version ${registered.id}`);
    this.logger.log(`job ${job.id}: version ${registered.id} was registered by an earlier attempt; finishing with it`);
    // The production its gate judged it against, as recorded: one changed since refuses the canary, as on a first run.
    const outcome = outcomeOf(registered);
    return this.finish(registered, outcome, payload.rolloutPolicy, outcome.productionHoldout?.versionId);
  }

  /**
   * The spec to train and the data split, checked; production's labels are read too, to evaluate it alike. A warm
   * start loads its parent and checks the spec against it before any data is read; the caller disposes of it.
   */
  private async prepare(payload: TrainingJobPayload): Promise<PreparedJob> {
    const holdoutFraction = holdoutFractionOf(payload.holdoutFraction);
    const { production } = await this.registry.findServing();
    const parent = await this.parentOf(payload, production);
    const { spec, recordedSpec } = jobSpecOf(payload, parent);
    // As the API checks it; a policy queued by another producer would otherwise be refused only once its canary exists.
    // A cadence's policy was checked against production's spec when it was set: production changed since to a spec
    // without a task it gates must not stop the cadence, so its tasks are left to the canary's step (finish says why).
    if (payload.rolloutPolicy)
      checkRolloutPolicyField(payload.requestedBy === 'schedule' ? undefined : spec, payload.rolloutPolicy);
    const parentModel = payload.warmStart && (await this.loadParent(parent!, spec));
    try {
      const { source, historyFrom, replay, late } = resolveSource(payload, parent, this.config.TRAINING_REPLAY_DAYS);
      if (payload.source.kind === 'incremental' && source.kind === 'events' && !(await this.data.hasEvents(source)))
        throw new EmptyWindowError(parent!.id, { from: source.from, to: source.to });
      const productionSpec = production && specOf(production);
      const groupBy = groupByOf(payload);
      // Production's held-out table only when it can be judged on this data (see evaluateProduction).
      const comparable =
        productionSpec &&
        featuresMissing(productionSpec, spec).length === 0 &&
        weightingDifference(spec, productionSpec) === undefined
          ? productionSpec
          : undefined;
      const seed = spec.training.seed;
      const productionTrainedTo = comparable && production?.metrics.dataset?.trainedTo;
      const data = await this.data.load(source, spec, comparable, holdoutFraction, groupBy, {
        ...(replay && { replay: { ...replay, seed } }),
        ...(late && { late }),
        ...(productionTrainedTo && { productionTrainedTo }),
      });
      try {
        checkTables(spec, data, this.config.TRAINING_MIN_ROWS);
      } catch (e) {
        // A quiet hour: the window grows until the next run, as an empty one does.
        if (payload.source.kind === 'incremental' && source.kind === 'events' && e instanceof TrainingInputError)
          throw new EmptyWindowError(parent!.id, { from: source.from, to: source.to }, e.message);
        throw e;
      }
      checkGroups(data.holdout, groupBy);
      return {
        payload,
        holdoutFraction,
        groupBy,
        production,
        parent,
        parentModel,
        spec,
        recordedSpec,
        source,
        historyFrom,
        replay: replay && { from: replay.from, to: replay.to },
        late: late && { from: late.from, to: late.to },
        data,
      };
    } catch (e) {
      parentModel?.dispose();
      throw e;
    }
  }

  /** The warm start's version (production's when it says so), else parentVersionId's, else production. */
  private async parentOf(
    payload: TrainingJobPayload,
    production: ModelVersion | undefined,
  ): Promise<ModelVersion | undefined> {
    const from = payload.warmStart?.from;
    if (from === undefined) {
      if (payload.source.kind === 'incremental')
        throw new TrainingInputError("an incremental source needs a warmStart: it continues from the parent's data");
      return payload.parentVersionId === undefined ? production : this.parent(payload.parentVersionId);
    }
    if (from === 'production' && !production)
      throw new TrainingInputError(
        payload.requestedBy === 'schedule'
          ? 'the schedule warm-starts from production, and there is no production version yet: train and promote one first'
          : 'warmStart.from: there is no production version to start from',
      );
    const parent = from === 'production' ? production! : await this.parent(from, 'warmStart.from');
    if (payload.parentVersionId !== undefined && payload.parentVersionId !== parent.id)
      throw new TrainingInputError(
        `parentVersionId ${payload.parentVersionId} differs from the warm start's version ${parent.id}`,
      );
    return parent;
  }

  /** The parent's model, refused before any data is read when the spec differs from it in what a weight means. */
  private async loadParent(parent: ModelVersion, spec: ModelSpec): Promise<MultiTaskModel> {
    const stored = await this.registry.findArtifact(parent.id);
    if (!stored) throw new TrainingInputError(`warmStart: the artifact of version ${parent.id} is gone`);
    const model = loadVersion(parent.id, stored.artifact);
    const differences = warmStartDifferences(model.spec, model.network.preprocessing, spec);
    if (differences.length > 0) {
      model.dispose();
      throw new TrainingInputError(`the spec cannot warm-start from version ${parent.id}: ${differences.join('; ')}`);
    }
    return model;
  }

  /**
   * The candidate and production on the held-out slice, the gate's decision, and what the version will record (but
   * the int8 check, which is the served weights'); `encoded`, the slice in the candidate's terms.
   */
  private async evaluate(
    model: MultiTaskModel,
    summary: TrainedModel['summary'],
    job: PreparedJob,
  ): Promise<{ metrics: Omit<TrainedMetrics, 'int8'>; encoded: EncodedDataset }> {
    const encoded = model.encode(job.data.holdout);
    const holdout = model.evaluate(encoded, { groups: job.data.holdout.groupIds() });
    const baseline = await this.evaluateProduction(job, model);
    const gate = decideRollout(job.spec.tasks, holdout.tasks, baseline, {
      autoCanary: this.config.AUTO_CANARY,
      binaryMetric: this.config.TRAINING_GATE_METRIC,
      aucTolerance: this.config.TRAINING_AUC_TOLERANCE,
      rmseTolerance: this.config.TRAINING_RMSE_TOLERANCE,
      minLabels: this.config.TRAINING_GATE_MIN_LABELS,
    });
    const { valid, warmStart, ...trained } = summary;
    const backend = await initBackend(this.config.MMOE_BACKEND); // started at boot: this only reads which one
    const metrics = {
      tasks: holdout.tasks,
      gates: holdout.gates,
      calibration: holdout.calibration,
      examples: holdout.examples,
      ...(baseline.kind === 'evaluated'
        ? {
            productionHoldout: {
              versionId: baseline.versionId,
              tasks: baseline.tasks,
              ...(baseline.unseen && { unseen: baseline.unseen }),
            },
          }
        : {}),
      ...(job.parentModel &&
        job.parent!.id !== job.production?.id && {
          // Same features and tasks as the candidate (the warm start's rules): it reads the candidate's table.
          parentHoldout: { versionId: job.parent!.id, tasks: job.parentModel.evaluate(job.data.holdout).tasks },
        }),
      gate,
      training: {
        ...trained,
        validation: valid.tasks,
        rows: job.data.train.size,
        validationRows: valid.examples,
        parameters: model.parameterCount(),
        backend: `${backend.name} (${backend.detail})`,
        ...(job.payload.overrides && { overrides: job.payload.overrides }),
        ...(warmStart && { warmStart: { parentVersionId: job.parent!.id, vocabularies: warmStart.vocabularies } }),
      },
      dataset: {
        source: job.payload.source,
        ...(job.source.kind === 'events' && {
          window: { from: job.source.from, to: job.source.to },
          // An events job's held-out slice starts at an event's time (checkTables saw it is not empty).
          trainedTo: job.data.holdoutStart as string,
          historyFrom: job.historyFrom,
          snapshot: job.data.snapshot,
        }),
        ...(job.late && { late: { ...job.late, rows: job.data.late } }),
        ...(job.replay && { replay: { ...job.replay, rows: job.data.replayed } }),
        holdoutFraction: job.holdoutFraction,
        groupBy: job.groupBy ?? null,
        holdoutStart: job.data.holdoutStart,
        skippedRows: job.data.skipped + job.data.malformed,
      },
    };
    return { metrics, encoded };
  }

  /**
   * What the version records of the model it serves: the gate's metrics as they were measured, the refit when there
   * was one (and then its data ends at the window's end: the next incremental job starts there), and the int8 check
   * of the served weights.
   */
  private async servedMetrics(
    judged: { metrics: Omit<TrainedMetrics, 'int8'>; encoded: EncodedDataset },
    { model, refit }: Served,
    job: PreparedJob,
  ): Promise<TrainedMetrics> {
    const { metrics } = judged;
    // Without onnxruntime-node here there is no int8 graph to judge: the version stays fp32-only.
    const int8 =
      (await loadOnnxRuntime()) &&
      (await checkInt8(
        { spec: model.spec, preprocessing: model.network.preprocessing, weights: model.network.snapshot() },
        // A refit may have grown the vocabularies: the slice is encoded again in its terms.
        refit ? model.encode(job.data.holdout) : judged.encoded,
      ));
    if (!refit) return { ...metrics, ...(int8 && { int8 }) };
    return {
      ...metrics,
      ...(int8 && { int8 }),
      training: {
        ...metrics.training,
        refit: {
          rows: job.data.holdout.size,
          validationRows: refit.valid.examples,
          epochs: refit.epochsRun,
          seconds: refit.seconds,
          examplesPerSec: refit.examplesPerSec,
          validation: refit.valid.tasks,
          optimizer: refit.optimizer,
          ...(refit.warmStart && { vocabularies: refit.warmStart.vocabularies }),
          vocabularyOverflow: refit.vocabularyOverflow,
        },
      },
      dataset: {
        ...metrics.dataset,
        ...(job.source.kind === 'events' && { trainedTo: job.source.to }),
      },
    };
  }

  private async parent(id: number, field = 'parentVersionId'): Promise<ModelVersion> {
    try {
      return await this.registry.get(id);
    } catch (e) {
      throw e instanceof NotFoundError ? new TrainingInputError(`${field}: ${e.message}`) : e;
    }
  }

  /**
   * Production judged on the candidate's held-out slice, when it reads only features the candidate's data holds; and,
   * beside the `candidate`, on the rows of it production has not trained on, when it trained on others.
   */
  private async evaluateProduction(
    { production, spec, data, parent, parentModel }: PreparedJob,
    candidate: MultiTaskModel,
  ): Promise<ProductionBaseline> {
    if (!production) return { kind: 'none' };
    const weighting = weightingDifference(spec, specOf(production));
    if (weighting) return { kind: 'incomparable', versionId: production.id, why: weighting };
    const missing = featuresMissing(specOf(production), spec);
    if (missing.length > 0 || !data.productionHoldout) {
      return {
        kind: 'incomparable',
        versionId: production.id,
        why: `it reads features the candidate does not (${missing.map((f) => f.name).join(', ')})`,
      };
    }
    const unseen = data.unseenByProduction;
    const evaluated = (model: MultiTaskModel): ProductionBaseline => ({
      kind: 'evaluated',
      versionId: production.id,
      tasks: model.evaluate(data.productionHoldout!).tasks,
      ...(unseen && {
        unseen: {
          trainedTo: unseen.trainedTo,
          rows: unseen.holdout.size,
          // An empty table has no metrics to give: the gate keeps the candidate without them.
          candidate: unseen.holdout.size > 0 ? candidate.evaluate(unseen.holdout).tasks : {},
          production: unseen.productionHoldout.size > 0 ? model.evaluate(unseen.productionHoldout).tasks : {},
        },
      }),
    });
    // A warm start from production has it loaded already.
    if (parentModel && parent?.id === production.id) return evaluated(parentModel);
    const stored = await this.registry.findArtifact(production.id);
    if (!stored) return { kind: 'incomparable', versionId: production.id, why: 'its artifact is gone' };
    // A production that does not load is not judged, and its replacement may still be trained.
    let model: MultiTaskModel;
    try {
      model = loadVersion(production.id, stored.artifact);
    } catch (e) {
      if (!(e instanceof TrainingInputError)) throw e;
      return { kind: 'incomparable', versionId: production.id, why: e.message };
    }
    try {
      return evaluated(model);
    } finally {
      model.dispose();
    }
  }

  /**
   * Applies the gate's decision to a registered version, with the job's rollout policy on the canary, and reports the
   * job's outcome. Each step is a transition of its own in the rollout history, by the worker. `judgedAgainst`: the
   * production when the job started (null: none), which the gate judged by; the canary is refused if production has
   * changed since (a rollback would otherwise see the rolled-back lineage come back, judged against what it replaced),
   * or if another version is the canary (planCanary). Undefined (unknown): only the latter is checked.
   */
  private async finish(
    version: ModelVersion,
    metrics: JobOutcome,
    policy: RolloutPolicy | undefined,
    judgedAgainst?: number | null,
  ): Promise<TrainingJobResult> {
    let { decision, reason } = metrics.gate;
    // The version is registered either way; a refused step (someone moved it meanwhile, a policy naming a task the
    // spec lacks) is for a human to sort out.
    const refused = (e: unknown) =>
      e instanceof ConflictError || e instanceof NotFoundError || e instanceof InvalidFieldsError;
    // Each step is refused once taken (the version read here may be stale): an attempt of this job overlapping this
    // one, after a lock lost to a blocked event loop, may have taken it, and then its outcome is this one's too.
    const now = () => this.registry.find(version.id);
    if (decision === 'canary' && version.status === 'candidate' && policy && !version.rolloutPolicy) {
      // A cadence's policy was checked against production's spec when it was set, and production may have lost a task
      // it gates since: a canary without its policy would wait for a person and hold back every later run's canary.
      try {
        checkRolloutPolicyField(parsedSpecOf(version), policy);
      } catch (e) {
        if (!(e instanceof InvalidFieldsError)) throw e;
        [decision, reason] = [
          'candidate',
          `passed the gate (${reason}), but its rollout policy does not fit it: ${e.message}`,
        ];
      }
    }
    if (decision === 'canary' && version.status === 'candidate') {
      try {
        await this.registry.setCanary(version.id, this.config.CANARY_PERCENT, undefined, ACTOR, { judgedAgainst });
      } catch (e) {
        if (!refused(e)) throw e;
        if ((await now())?.status !== 'canary')
          [decision, reason] = [
            'candidate',
            `passed the gate (${reason}), but the canary was refused: ${(e as Error).message}`,
          ];
      }
    }
    if (decision === 'canary' && policy && !version.rolloutPolicy) {
      try {
        await this.registry.setRolloutPolicy(version.id, policy, ACTOR, { once: true });
      } catch (e) {
        if (!refused(e)) throw e;
        const refusal = '; its rollout policy was refused: ';
        // A retry finds a refusal in the reason it recorded (below) already, whatever its message then.
        if (!(await now())?.rolloutPolicy && !reason.includes(refusal)) reason += `${refusal}${(e as Error).message}`;
      }
    }
    // What the version shows of its gate is what came of it, not a canary decision beside a candidate status.
    if (decision !== metrics.gate.decision || reason !== metrics.gate.reason)
      await this.registry.recordGateOutcome(version.id, { decision, reason });
    return {
      versionId: version.id,
      candidate: metrics.tasks,
      ...(metrics.productionHoldout ? { production: metrics.productionHoldout.tasks } : {}),
      ...(metrics.productionHoldout?.unseen && { unseen: metrics.productionHoldout.unseen }),
      decision,
      reason,
      examples: { train: metrics.training.rows, holdout: metrics.examples },
      trainingSeconds: metrics.training.seconds,
    };
  }
}

/**
 * The job's data checked against the queue contract, by the job's name. A scheduled run is the repeatable job's
 * settings, not a window (Bull repeats the data it was given), made a job as of when the run was due, a time that stays
 * the same when the run is retried: a full retrain trains with production's spec on the days before it (from
 * production's weights with `warmStart`); an incremental one warm-starts from production on the events from where
 * production's data ended until then.
 */
export function payloadOf(job: Pick<Job<unknown>, 'name' | 'data' | 'timestamp' | 'opts'>): TrainingJobPayload {
  const due = job.timestamp + (job.opts.delay ?? 0);
  switch (job.name) {
    case TrainingJobName.Train:
      return parseJobData(trainingJobPayload, job.data);
    case TrainingJobName.ScheduledRetrain: {
      const { windowDays, warmStart, epochs, rolloutPolicy } = parseJobData(scheduledRetrainPayload, job.data);
      return {
        source: {
          kind: 'events',
          from: new Date(due - windowDays * DAY_MS).toISOString(),
          to: new Date(due).toISOString(),
        },
        ...(warmStart && { warmStart: { from: 'production' as const } }),
        ...(epochs && { overrides: { epochs } }),
        requestedBy: 'schedule',
        ...(rolloutPolicy && { rolloutPolicy }),
      };
    }
    case TrainingJobName.ScheduledIncremental: {
      const { replay, epochs, rolloutPolicy } = parseJobData(scheduledIncrementalPayload, job.data);
      return {
        source: { kind: 'incremental', to: new Date(due).toISOString(), replay },
        warmStart: { from: 'production' },
        overrides: { epochs },
        requestedBy: 'schedule',
        ...(rolloutPolicy && { rolloutPolicy }),
      };
    }
    default:
      throw new InvalidFieldsError([
        { field: 'name', message: `name: the training queue has no job named ${JSON.stringify(job.name)}` },
      ]);
  }
}

/**
 * The events or file a job reads. An incremental source is the window from where its parent's training rows ended to
 * `to`, with the late events its parent did not see and replaying older events of its lineage when asked
 * (incrementalPlan); `historyFrom` is where the lineage's events start, for the new version to record.
 */
export function resolveSource(
  payload: Pick<TrainingJobPayload, 'source'> & Partial<Pick<TrainingJobPayload, 'requestedBy'>>,
  parent: Pick<ModelVersion, 'id' | 'metrics'> | undefined,
  replayDays: number,
): {
  source: EventsSource | CsvSource;
  historyFrom?: string;
  replay?: IncrementalPlan['replay'];
  late?: IncrementalPlan['late'];
} {
  const { source } = payload;
  if (source.kind === 'csv') return { source };
  if (source.kind === 'events') return { source, historyFrom: source.from };
  const continuation = parent && continuationOf(parent.metrics.dataset);
  if (!continuation) {
    const what = `version ${parent?.id} records no window of events to continue from (trained on a file?)`;
    // A cadence's run cannot be given a window: what fixes it is a production that records one.
    throw new TrainingInputError(
      payload.requestedBy === 'schedule'
        ? `production ${what}: the incremental cadence continues from production's events; promote a version trained on events first (a full retrain: the full cadence, or POST /admin/training-jobs with an events source)`
        : `${what}: give source.from and source.to`,
    );
  }
  if (!(Date.parse(source.to) > Date.parse(continuation.from)))
    throw new EmptyWindowError(parent!.id, { from: continuation.from, to: source.to });
  const { window, replay, late } = incrementalPlan(continuation, source.to, source.replay ?? 0, replayDays);
  return {
    source: { kind: 'events', ...window },
    historyFrom: continuation.historyFrom,
    ...(replay && { replay }),
    ...(late && { late }),
  };
}

/** What an earlier attempt of the job stored with its version; a version a worker registered records all of it. */
function outcomeOf({ id, metrics }: ModelVersion): JobOutcome {
  const { gate, tasks, productionHoldout, examples, training } = metrics;
  if (!gate || !tasks || examples === undefined || !training)
    throw new TrainingInputError(`version ${id} records this job but not its evaluation: a worker did not register it`);
  return { gate, tasks, productionHoldout, examples, training };
}

/**
 * The job's spec, else the parent's (production's when no parent is named), as the version records it, and with the
 * job's training overrides, as the job trains it.
 */
function jobSpecOf(
  payload: TrainingJobPayload,
  parent: ModelVersion | undefined,
): { spec: ModelSpec; recordedSpec: ModelSpec } {
  const base = payload.spec ?? parent?.spec;
  if (!base)
    throw new TrainingInputError('no spec: the job names none and there is no production version to take it from');
  try {
    const recordedSpec = parseModelSpec(base);
    if (!payload.overrides) return { spec: recordedSpec, recordedSpec };
    return {
      spec: parseModelSpec({ ...recordedSpec, training: { ...recordedSpec.training, ...payload.overrides } }),
      recordedSpec,
    };
  } catch (e) {
    throw e instanceof SpecValidationError ? new TrainingInputError(e.message) : e;
  }
}

/**
 * A training that diverged (a weight NaN or infinite) fails its job at once, naming the weight: it would score every
 * item NaN, and no reader would load its artifact; the same data and seed would diverge again on a retry.
 */
export function checkFinite(model: MultiTaskModel): void {
  for (const [name, values] of model.network.snapshot())
    for (let i = 0; i < values.length; i++)
      if (!Number.isFinite(values[i]))
        throw new TrainingInputError(
          `training diverged: weight ${name} holds ${values[i]} at index ${i}; lower training.learningRate, or check the scale of the labels`,
        );
}

/** A record of job `jobId` older than the job itself: another job with the same id wrote it. */
function repeatedJobId(jobId: string, record: string): TrainingInputError {
  return new TrainingInputError(
    `${record} already records a training job ${jobId}, made before this job was queued: job ids repeat (did Redis lose the queue's data?); queue jobs with unique ids`,
  );
}

/**
 * A stored version's model. One whose artifact does not load (NaN weights, registered before they were refused)
 * fails the job at once, naming the version: a retry would fail alike.
 */
export function loadVersion(id: number, artifact: Buffer): MultiTaskModel {
  try {
    return MultiTaskModel.fromArtifact(artifact);
  } catch (e) {
    if (!(e instanceof ArtifactError)) throw e;
    throw new TrainingInputError(`the artifact of version ${id} does not load: ${e.message}`);
  }
}
