import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Job } from 'bull';

import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import type { ModelVersionRecord } from '@app/db';
import {
  checkInt8,
  initBackend,
  loadOnnxRuntime,
  MultiTaskModel,
  parseModelSpec,
  SpecValidationError,
  type EvaluationReport,
  type Int8Check,
  type ModelSpec,
  type TrainSummary,
} from '@app/mmoe';
import {
  parseJobData,
  scheduledRetrainPayload,
  TrainingCancellationRepository,
  TrainingJobName,
  trainingJobPayload,
  type TrainingJobPayload,
  type TrainingJobResult,
} from '@app/queue';
import { ModelRegistryService, specOf } from '@app/registry';

import { checkTables, featuresMissing, groupByOf, holdoutFractionOf } from './dataset.rules';
import {
  decideRollout,
  type GateDecision,
  type ProductionBaseline,
  type TaskMetricsByName,
} from './evaluation-gate.rules';
import { JobProgressThrottle } from './job-progress.throttle';
import { JobWatch } from './job-watch';
import { TrainingDataService, type TrainingData } from './training-data.service';
import { TrainingInputError } from './training.errors';

const ACTOR = 'worker';
const DAY_MS = 86_400_000;

/** What a job stores in the version's metrics, so that a retry after the commit can finish from the row alone. */
interface TrainingMetrics {
  /** The candidate on the held-out slice (the key the admin API compares versions by). */
  tasks: TaskMetricsByName;
  gates: EvaluationReport['gates'];
  /** Per binary task, on the held-out slice: ECE, log loss and reliability curve before and after calibration. */
  calibration: EvaluationReport['calibration'];
  /** Held-out rows. */
  examples: number;
  productionHoldout?: { versionId: number; tasks: TaskMetricsByName };
  /** The int8 serving graph against fp32 on the held-out slice: whether the version may be served in int8. */
  int8?: Int8Check;
  gate: GateDecision;
  training: Omit<TrainSummary, 'valid'> & {
    validation: TaskMetricsByName;
    /** Rows trained on, early stopping's validation share included, and that share. */
    rows: number;
    validationRows: number;
    parameters: number;
    backend: string;
  };
  dataset: {
    source: TrainingJobPayload['source'];
    holdoutFraction: number;
    /** The column GAUC grouped the held-out rows by. */
    groupBy: string | null;
    holdoutStart: string | number | null;
    skippedRows: number;
  };
}

interface PreparedJob {
  payload: TrainingJobPayload;
  holdoutFraction: number;
  groupBy: string | undefined;
  production: ModelVersionRecord | undefined;
  parent: ModelVersionRecord | undefined;
  spec: ModelSpec;
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

  async run(job: Job<unknown>): Promise<TrainingJobResult> {
    // Before anything else: a job that does not match the queue contract, whoever queued it, fails here with its
    // fields named (a domain error, so that the processor does not retry it).
    const payload = payloadOf(job);
    const jobId = String(job.id);
    const registered = await this.registry.findByTrainingJob(jobId);
    if (registered) return this.resume(job, registered);
    const watch = new JobWatch(job, this.config.TRAINING_LOCK_SECONDS * 1000, () =>
      this.cancellations.isCancelled(jobId),
    );
    await watch.confirm();
    const progress = new JobProgressThrottle((p) => {
      job.progress(p).catch((e: Error) => this.logger.warn(`job ${jobId}: progress not saved (${e.message})`));
    });

    progress.phase('dataset');
    const prepared = await this.prepare(payload);
    const { spec, data: tables } = prepared;
    this.logger.log(
      `job ${jobId}: training on ${tables.train.size} rows, holding out ${tables.holdout.size} later rows (${tables.skipped} unreadable left out)`,
    );

    progress.phase('training');
    const { model, summary } = await MultiTaskModel.train(spec, tables.train, undefined, {
      onProgress: (p) => progress.training(p),
      shouldStop: watch.shouldStop,
      threads: this.config.TRAINING_THREADS,
    }).catch((e: unknown) => {
      throw watch.cause(e);
    });
    try {
      progress.phase('evaluating');
      const metrics = await this.evaluate(model, summary, prepared);

      progress.phase('registering');
      await watch.confirm();
      const version = await this.registry.registerTrained(
        model,
        {
          training: summary,
          parentVersionId: prepared.parent?.id,
          trainingJobId: jobId,
          metrics: metrics as unknown as Record<string, unknown>,
          note: `trained by job ${jobId} (${prepared.payload.requestedBy})`,
        },
        ACTOR,
      );
      this.logger.log(
        `job ${jobId}: registered version ${version.id} after ${summary.seconds.toFixed(1)} s of training; gate: ${metrics.gate.reason}`,
      );
      return await this.finish(version, metrics);
    } finally {
      model.dispose();
    }
  }

  /** An earlier attempt committed its version and died before finishing the job: finish from what it stored. */
  private resume(job: Job, registered: ModelVersionRecord): Promise<TrainingJobResult> {
    if (registered.createdAt.getTime() < job.timestamp) {
      throw new TrainingInputError(
        `version ${registered.id} already records a training job ${job.id}, registered before this job was queued: job ids repeat (did Redis lose the queue's data?); queue jobs with unique ids`,
      );
    }
    this.logger.log(`job ${job.id}: version ${registered.id} was registered by an earlier attempt; finishing with it`);
    return this.finish(registered, registered.metrics as unknown as TrainingMetrics);
  }

  /** The spec to train and the data split, checked; production's labels are read too, to evaluate it alike. */
  private async prepare(payload: TrainingJobPayload): Promise<PreparedJob> {
    const holdoutFraction = holdoutFractionOf(payload.holdoutFraction);
    const { production } = await this.registry.findServing();
    const parent = payload.parentVersionId === undefined ? production : await this.parent(payload.parentVersionId);
    const spec = jobSpecOf(payload, parent);
    const productionSpec = production && specOf(production);
    const groupBy = groupByOf(payload);
    // Production's held-out table only when it can be judged on this data (see evaluateProduction).
    const comparable =
      productionSpec && featuresMissing(productionSpec, spec).length === 0 ? productionSpec : undefined;
    const data = await this.data.load(payload.source, spec, comparable, holdoutFraction, groupBy);
    checkTables(spec, data, this.config.TRAINING_MIN_ROWS);
    return { payload, holdoutFraction, groupBy, production, parent, spec, data };
  }

  /** The candidate and production on the held-out slice, the gate's decision, and what the version will record. */
  private async evaluate(model: MultiTaskModel, summary: TrainSummary, job: PreparedJob): Promise<TrainingMetrics> {
    // Encoded once: tfjs's evaluation and the int8 check below read the same rows.
    const encodedHoldout = model.encode(job.data.holdout);
    const holdout = model.evaluate(encodedHoldout, { groups: job.data.holdout.groupIds() });
    const baseline = await this.evaluateProduction(job.production, job.spec, job);
    const gate = decideRollout(job.spec.tasks, holdout.tasks, baseline, {
      autoCanary: this.config.AUTO_CANARY,
      binaryMetric: this.config.TRAINING_GATE_METRIC,
      aucTolerance: this.config.TRAINING_AUC_TOLERANCE,
      rmseTolerance: this.config.TRAINING_RMSE_TOLERANCE,
    });
    const { valid, ...trained } = summary;
    const backend = await initBackend(this.config.MMOE_BACKEND); // started at boot: this only reads which one
    // Without onnxruntime-node here there is no int8 graph to judge: the version stays fp32-only.
    const int8 =
      (await loadOnnxRuntime()) &&
      (await checkInt8(
        { spec: model.spec, preprocessing: model.network.preprocessing, weights: model.network.snapshot() },
        encodedHoldout,
      ));
    return {
      tasks: holdout.tasks,
      gates: holdout.gates,
      calibration: holdout.calibration,
      examples: holdout.examples,
      ...(baseline.kind === 'evaluated'
        ? { productionHoldout: { versionId: baseline.versionId, tasks: baseline.tasks } }
        : {}),
      ...(int8 && { int8 }),
      gate,
      training: {
        ...trained,
        validation: valid.tasks,
        rows: job.data.train.size,
        validationRows: valid.examples,
        parameters: model.parameterCount(),
        backend: `${backend.name} (${backend.detail})`,
      },
      dataset: {
        source: job.payload.source,
        holdoutFraction: job.holdoutFraction,
        groupBy: job.groupBy ?? null,
        holdoutStart: job.data.holdoutStart,
        skippedRows: job.data.skipped + job.data.malformed,
      },
    };
  }

  private async parent(id: number): Promise<ModelVersionRecord> {
    try {
      return await this.registry.get(id);
    } catch (e) {
      throw e instanceof NotFoundError ? new TrainingInputError(`parentVersionId: ${e.message}`) : e;
    }
  }

  /** Production judged on the candidate's held-out slice, when it reads only features the candidate's data holds. */
  private async evaluateProduction(
    production: ModelVersionRecord | undefined,
    spec: ModelSpec,
    { data }: Pick<PreparedJob, 'data'>,
  ): Promise<ProductionBaseline> {
    if (!production) return { kind: 'none' };
    const missing = featuresMissing(specOf(production), spec);
    if (missing.length > 0 || !data.productionHoldout) {
      return {
        kind: 'incomparable',
        versionId: production.id,
        why: `it reads features the candidate does not (${missing.map((f) => f.name).join(', ')})`,
      };
    }
    const stored = await this.registry.findArtifact(production.id);
    if (!stored) return { kind: 'incomparable', versionId: production.id, why: 'its artifact is gone' };
    const model = MultiTaskModel.fromArtifact(stored.artifact);
    try {
      return { kind: 'evaluated', versionId: production.id, tasks: model.evaluate(data.productionHoldout).tasks };
    } finally {
      model.dispose();
    }
  }

  /** Applies the gate's decision to a registered version and reports the job's outcome. */
  private async finish(version: ModelVersionRecord, metrics: TrainingMetrics): Promise<TrainingJobResult> {
    let { decision, reason } = metrics.gate;
    if (decision === 'canary' && version.status === 'candidate') {
      try {
        await this.registry.setCanary(version.id, this.config.CANARY_PERCENT, undefined, ACTOR);
      } catch (e) {
        // The version is registered either way; a refused canary (someone moved it meanwhile) is for a human to sort out.
        if (!(e instanceof ConflictError || e instanceof NotFoundError)) throw e;
        [decision, reason] = ['candidate', `passed the gate, but the canary was refused: ${e.message}`];
      }
    }
    return {
      versionId: version.id,
      candidate: metrics.tasks,
      ...(metrics.productionHoldout ? { production: metrics.productionHoldout.tasks } : {}),
      decision,
      reason,
      examples: { train: metrics.training.rows, holdout: metrics.examples },
      trainingSeconds: metrics.training.seconds,
    };
  }
}

/**
 * The job's data checked against the queue contract, by the job's name. A scheduled run is the repeatable job's window
 * length, not a window (Bull repeats the data it was given): it trains with production's spec on the days before the
 * run was due, a time that stays the same when the run is retried.
 */
export function payloadOf(job: Pick<Job<unknown>, 'name' | 'data' | 'timestamp' | 'opts'>): TrainingJobPayload {
  switch (job.name) {
    case TrainingJobName.Train:
      return parseJobData(trainingJobPayload, job.data);
    case TrainingJobName.ScheduledRetrain: {
      const { windowDays } = parseJobData(scheduledRetrainPayload, job.data);
      const due = job.timestamp + (job.opts.delay ?? 0);
      return {
        source: {
          kind: 'events',
          from: new Date(due - windowDays * DAY_MS).toISOString(),
          to: new Date(due).toISOString(),
        },
        requestedBy: 'schedule',
      };
    }
    default:
      throw new InvalidFieldsError([
        { field: 'name', message: `name: the training queue has no job named ${JSON.stringify(job.name)}` },
      ]);
  }
}

/** The job's spec, else the parent's (production's when no parent is named), with the job's training overrides. */
function jobSpecOf(payload: TrainingJobPayload, parent: ModelVersionRecord | undefined): ModelSpec {
  const base = payload.spec ?? parent?.spec;
  if (!base)
    throw new TrainingInputError('no spec: the job names none and there is no production version to take it from');
  try {
    const spec = parseModelSpec(base);
    return parseModelSpec({ ...spec, training: { ...spec.training, ...payload.overrides } });
  } catch (e) {
    throw e instanceof SpecValidationError ? new TrainingInputError(e.message) : e;
  }
}
