import { Injectable } from '@nestjs/common';

import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import { EventRepository } from '@app/db';
import {
  parseModelSpec,
  readArtifactHeader,
  SpecValidationError,
  warmStartDifferences,
  type ModelSpec,
  type PreprocessingState,
} from '@app/mmoe/serving';
import { TrainingCancellationRepository, type TrainingDataSource, type TrainingJobPayload } from '@app/queue';
import {
  checkRolloutPolicyField,
  continuationOf,
  ModelRegistryService,
  parsedSpecOf,
  type ModelVersion,
  type StoredRolloutPolicy,
} from '@app/registry';

import { TrainingJobsRepository, type TrainingJobRecord } from './training-jobs.repository';

export type NewTrainingJob = Omit<TrainingJobPayload, 'requestedBy'>;

export interface TrainingJobView extends TrainingJobRecord {
  cancelRequested: boolean;
}

export interface CancelOutcome {
  id: string;
  state: 'removed' | 'cancelling';
}

/** States a job has left for good: nothing is left to cancel. */
const FINISHED = new Set(['completed', 'failed']);

/** Training runs asked for through the admin API: checked before they are queued, then followed and cancelled. */
@Injectable()
export class TrainingJobsService {
  constructor(
    private readonly jobs: TrainingJobsRepository,
    private readonly cancellation: TrainingCancellationRepository,
    private readonly registry: ModelRegistryService,
    private readonly events: EventRepository,
  ) {}

  /** Rejects here, with a 400 naming the field, what would otherwise only fail on a worker minutes later. */
  async create(job: NewTrainingJob, actor: string): Promise<TrainingJobRecord> {
    checkWindow(job.source);
    if (job.spec !== undefined) checkSpec(job.spec);
    await this.checkWarmStart(job);
    if (job.parentVersionId !== undefined && !(await this.registry.find(job.parentVersionId))) {
      throw new InvalidFieldsError([
        { field: 'parentVersionId', message: `parentVersionId names no version (${job.parentVersionId})` },
      ]);
    }
    if (
      job.spec === undefined &&
      job.parentVersionId === undefined &&
      !(await this.registry.findServing()).production
    ) {
      throw new InvalidFieldsError([
        { field: 'spec', message: 'spec is required while no version is in production to take it from' },
      ]);
    }
    if (job.rolloutPolicy) await this.checkPolicy(job, job.rolloutPolicy);
    return this.jobs.add({ ...job, requestedBy: actor });
  }

  /**
   * The policy against the spec the job will train (its own, else its parent's or production's, as the worker takes
   * it): which tasks may gate is otherwise checked only once the job has trained and made its canary, which would then
   * wait with no policy to decide it. A stored spec that no longer parses is the worker's to report: then only what
   * needs no spec is checked.
   */
  private async checkPolicy(job: NewTrainingJob, policy: StoredRolloutPolicy): Promise<void> {
    // The job's own spec has passed checkSpec; a stored one may no longer parse.
    const parent = job.spec === undefined ? await this.parentOf(job) : undefined;
    checkRolloutPolicyField(job.spec === undefined ? parent && parsedSpecOf(parent) : parseModelSpec(job.spec), policy);
  }

  /** The version the worker takes the spec from: the warm start's, else parentVersionId's, else production. */
  private async parentOf({ warmStart, parentVersionId }: NewTrainingJob): Promise<ModelVersion | undefined> {
    const id = warmStart?.from ?? parentVersionId ?? 'production';
    return id === 'production' ? (await this.registry.findServing()).production : this.registry.find(id);
  }

  /**
   * A warm start's version must exist (production must serve one when it names it) and agree with parentVersionId;
   * an incremental source needs one. The spec's compatibility needs the parent's artifact: the worker checks it first.
   */
  private async checkWarmStart({ warmStart, source, parentVersionId, spec }: NewTrainingJob): Promise<void> {
    const field = 'warmStart.from';
    if (!warmStart) {
      if (source.kind === 'incremental')
        throw new InvalidFieldsError([
          {
            field: 'warmStart',
            message: "warmStart is required with an incremental source (it continues the parent's data)",
          },
        ]);
      return;
    }
    const parent =
      warmStart.from === 'production'
        ? (await this.registry.findServing()).production
        : await this.registry.find(warmStart.from);
    if (!parent) {
      const message =
        warmStart.from === 'production'
          ? `${field}: there is no production version to start from`
          : `${field} names no version (${warmStart.from})`;
      throw new InvalidFieldsError([{ field, message }]);
    }
    if (parentVersionId !== undefined && parentVersionId !== parent.id)
      throw new InvalidFieldsError([
        {
          field: 'parentVersionId',
          message: `parentVersionId ${parentVersionId} differs from the warm start's version ${parent.id}`,
        },
      ]);
    if (spec !== undefined) await this.checkCompatible(parent.id, parseModelSpec(spec));
    if (source.kind === 'incremental') await this.checkIncrementalWindow(parent, source.to);
  }

  /**
   * An incremental window starts where the parent's training rows ended (continuationOf, as the worker reads it) and
   * must hold a new event: an empty one would train nothing.
   */
  private async checkIncrementalWindow(parent: ModelVersion, to: string): Promise<void> {
    const continuation = continuationOf(parent.metrics.dataset);
    if (!continuation)
      throw new InvalidFieldsError([
        {
          field: 'warmStart.from',
          message: `warmStart.from: version ${parent.id} records no window of events to continue from (trained on a file or uploaded)`,
        },
      ]);
    const [from, end] = [new Date(continuation.from), new Date(to)];
    if (!(end > from && (await this.events.anyBetween(from, end))))
      throw new InvalidFieldsError([
        {
          field: 'source.to',
          message: `source.to: no new events in the incremental window [${continuation.from}, ${to}): version ${parent.id}'s training data ends at ${continuation.from}`,
        },
      ]);
  }

  /** The spec must mean the same weights as the parent's (the worker checks again: production may change meanwhile). */
  private async checkCompatible(parentId: number, spec: ModelSpec): Promise<void> {
    const stored = await this.registry.findArtifact(parentId);
    if (!stored) return; // the worker fails the job with the reason
    // The header holds all it needs: decoding every weight would cost a large model's load, for nothing.
    const header = readArtifactHeader(stored.artifact);
    const differences = warmStartDifferences(
      parseModelSpec(header.spec),
      header.preprocessing as PreprocessingState,
      spec,
    );
    if (differences.length > 0)
      throw new InvalidFieldsError([
        { field: 'spec', message: `spec cannot warm-start from version ${parentId}: ${differences.join('; ')}` },
      ]);
  }

  async list(limit: number): Promise<TrainingJobView[]> {
    return Promise.all((await this.jobs.listRecent(limit)).map((job) => this.view(job)));
  }

  async get(id: string): Promise<TrainingJobView> {
    const job = await this.jobs.get(id);
    if (!job) throw new NotFoundError(`training job ${id} does not exist`);
    return this.view(job);
  }

  /** A job that has not started is removed; a running one is flagged, and its worker stops it at its next check. */
  async cancel(id: string): Promise<CancelOutcome> {
    const job = await this.get(id);
    if (job.repeated)
      throw new ConflictError(`training job ${id} is a run of the retraining schedule: pause the schedule instead`);
    if (FINISHED.has(job.state)) throw new ConflictError(`training job ${id} has already ${job.state}`);
    // Flagged first: a waiting job may start between our look and the removal, which then fails.
    await this.cancellation.request(id);
    const removed = job.state !== 'active' && (await this.jobs.remove(id));
    return { id, state: removed ? 'removed' : 'cancelling' };
  }

  private async view(job: TrainingJobRecord): Promise<TrainingJobView> {
    return { ...job, cancelRequested: await this.cancellation.isCancelled(job.id) };
  }
}

function checkWindow(source: TrainingDataSource): void {
  if (source.kind === 'events' && Date.parse(source.from) >= Date.parse(source.to)) {
    throw new InvalidFieldsError([{ field: 'source.to', message: 'source.to must be after source.from' }]);
  }
}

function checkSpec(spec: unknown): void {
  try {
    parseModelSpec(spec);
  } catch (error) {
    if (!(error instanceof SpecValidationError)) throw error;
    const field = (path: string) => (path === '(root)' ? 'spec' : `spec.${path}`);
    throw new InvalidFieldsError(
      error.problems.map(({ path, message }) => ({ field: field(path), message: `${field(path)}: ${message}` })),
    );
  }
}
