import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, In, type FindOptionsSelect } from 'typeorm';

import { ModelVersionEntity, type ModelStatus } from '../entities/model-version.entity';
import type { RolloutAction } from '../entities/rollout-event.entity';
import { ReadReplica } from '../read-replica';
import { ROLLOUT_LOCK_KEY, SERVED_SET_LOCK_KEY } from '../rollout-lock';
import { feedKey, type EventFeed } from './event.repository';
import { RolloutRepository, type NewRolloutEvent, type RolloutEventRecord } from './rollout.repository';

/** A version without its large columns (artifact, ONNX, preprocessing state). */
export type ModelVersionRecord = Omit<ModelVersionEntity, 'artifact' | 'onnx' | 'preprocessing'>;

export type NewModelVersion = Pick<
  ModelVersionEntity,
  | 'spec'
  | 'preprocessing'
  | 'metrics'
  | 'artifact'
  | 'artifactSha256'
  | 'onnx'
  | 'onnxSha256'
  | 'objectiveWeights'
  | 'parentVersionId'
  | 'trainingJobId'
  | 'note'
  | 'servingPrecision'
>;

/** A version's artifact alone: what loading it for serving or evaluation reads (servers build their own graph). */
export type ModelVersionArtifact = Pick<ModelVersionEntity, 'id' | 'artifact'>;

/** The columns a rollout transition may change. */
export type ModelVersionPatch = Partial<
  Pick<
    ModelVersionEntity,
    | 'status'
    | 'canaryPercent'
    | 'shadowPercent'
    | 'rolloutPolicy'
    | 'objectiveWeights'
    | 'fusion'
    | 'promotedAt'
    | 'servingPrecision'
  >
>;

/** The rows of the versions that serve now, by role (the registry reads them into its ServingVersions). */
export interface ServingRecords {
  production?: ModelVersionRecord;
  canary?: ModelVersionRecord;
  /** Scores a share of requests in the background; never answers one. */
  shadow?: ModelVersionRecord;
}

export interface LockedRecords extends ServingRecords {
  /** The version a transition names, when it names one and it exists. */
  target?: ModelVersionRecord;
}

const SERVING_STATUSES: ModelStatus[] = ['production', 'canary', 'shadow'];

const RECORD_COLUMNS: FindOptionsSelect<ModelVersionEntity> = {
  id: true,
  status: true,
  spec: true,
  metrics: true,
  artifactSha256: true,
  onnxSha256: true,
  servingPrecision: true,
  parentVersionId: true,
  trainingJobId: true,
  canaryPercent: true,
  shadowPercent: true,
  rolloutPolicy: true,
  objectiveWeights: true,
  fusion: true,
  note: true,
  createdAt: true,
  promotedAt: true,
};

/** The writes of one rollout transition, all inside a single Postgres transaction. */
export class RolloutTransaction {
  constructor(
    private readonly manager: EntityManager,
    private readonly rollouts: RolloutRepository,
  ) {}

  /**
   * Locks the serving versions (production, canary, shadow) and the version `id`, when given. FOR NO KEY UPDATE, not
   * FOR UPDATE: an event batch under way holds the shared served-set lock that a change of roles then waits for, and
   * its events' foreign key to their version takes FOR KEY SHARE on that row, which FOR UPDATE would make wait for
   * the change: a deadlock. A transition changes no key.
   */
  async lock(id?: number): Promise<LockedRecords> {
    const rows = await this.manager.getRepository(ModelVersionEntity).find({
      select: RECORD_COLUMNS,
      where: [{ status: In(SERVING_STATUSES) }, ...(id === undefined ? [] : [{ id }])],
      order: { id: 'ASC' },
      lock: { mode: 'for_no_key_update' },
    });
    return { ...servingOf(rows), target: rows.find((r) => r.id === id) };
  }

  /** The version that was production before `productionId` was promoted, locked as lock() does; undefined if none. */
  async lockPreviousProduction(productionId: number): Promise<ModelVersionRecord | undefined> {
    const previousId = await this.rollouts.promotedOver(this.manager, productionId);
    if (previousId === null) return undefined;
    const row = await this.manager.getRepository(ModelVersionEntity).findOne({
      select: RECORD_COLUMNS,
      where: { id: previousId },
      lock: { mode: 'for_no_key_update' },
    });
    return row ?? undefined;
  }

  /** Before a change of the versions served: waits for the event batches under way (SERVED_SET_LOCK_KEY). */
  async lockServedSet(): Promise<void> {
    await this.manager.query('SELECT pg_advisory_xact_lock($1)', [SERVED_SET_LOCK_KEY]);
  }

  async update(id: number, patch: ModelVersionPatch): Promise<void> {
    await this.manager.getRepository(ModelVersionEntity).update({ id }, patch);
  }

  /**
   * Brings the fills (EventRepository.backfill) in line with the feeds served once this transition commits (`served`),
   * `before` it: a feed that starts being served is marked to fill, whatever was recorded of it, and (with `forget`) a
   * feed no version serves is forgotten. No event feeds a list while no version serves it, so a version that serves it
   * again (a rollback, a feed removed then added back) must have it filled again; and a process that had not yet heard
   * of the change that stopped serving it may have filled it (and recorded it done) since, from the same stale lists. A
   * fill under way for a feed reset here loses its claim at its next batch and stops; the next one starts over.
   */
  async syncFeedFills(before: readonly EventFeed[], served: readonly EventFeed[], forget: boolean): Promise<void> {
    const keys = served.map(feedKey);
    const known = new Set(before.map(feedKey));
    if (forget) await this.manager.query(`DELETE FROM event_feed_backfills WHERE feed <> ALL($1::text[])`, [keys]);
    await this.manager.query(
      `INSERT INTO event_feed_backfills (feed) SELECT unnest($1::text[])
       ON CONFLICT (feed) DO UPDATE SET claimed_at = NULL, done_at = NULL`,
      [keys.filter((key) => !known.has(key))],
    );
  }

  record(event: NewRolloutEvent): Promise<RolloutEventRecord> {
    return this.rollouts.record(this.manager, event);
  }

  /** RolloutRepository.lastOfEach, in this transaction (after lock(): no transition of that version can record one). */
  lastOfEach(versionId: number, actions: readonly RolloutAction[]) {
    return this.rollouts.lastOfEach(versionId, actions, this.manager);
  }

  skipOf(job: string): Promise<RolloutEventRecord | undefined> {
    return this.rollouts.skipOf(job, this.manager);
  }
}

@Injectable()
export class ModelVersionRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rollouts: RolloutRepository,
    private readonly reads: ReadReplica,
  ) {}

  /** Newest first. */
  list(): Promise<ModelVersionRecord[]> {
    return this.dataSource.getRepository(ModelVersionEntity).find({ select: RECORD_COLUMNS, order: { id: 'DESC' } });
  }

  async get(id: number): Promise<ModelVersionRecord | undefined> {
    return this.findRecord(this.dataSource, id);
  }

  /**
   * Like get(), for what a version stores once and never changes (its training report): from the read replica when
   * there is one, from the primary when the replica has not replayed the version yet.
   */
  getStored(id: number): Promise<ModelVersionRecord | undefined> {
    return this.reads.read(
      (db) => this.findRecord(db, id),
      (found) => found === undefined,
    );
  }

  async findByTrainingJob(trainingJobId: string): Promise<ModelVersionRecord | undefined> {
    return (
      (await this.dataSource
        .getRepository(ModelVersionEntity)
        .findOne({ select: RECORD_COLUMNS, where: { trainingJobId } })) ?? undefined
    );
  }

  /** Sets `metrics.gate` alone (the rest of what a version records never changes); false if no such version. */
  async recordGate(id: number, gate: object): Promise<boolean> {
    const [, count] = (await this.dataSource.query(
      `UPDATE model_versions SET metrics = jsonb_set(metrics, '{gate}', $2::jsonb) WHERE id = $1`,
      [id, JSON.stringify(gate)],
    )) as [unknown, number];
    return count > 0;
  }

  async getArtifact(id: number): Promise<ModelVersionArtifact | undefined> {
    const row = await this.dataSource
      .getRepository(ModelVersionEntity)
      .findOne({ select: { id: true, artifact: true }, where: { id } });
    return row ?? undefined;
  }

  async findServing(): Promise<ServingRecords> {
    const rows = await this.dataSource
      .getRepository(ModelVersionEntity)
      .find({ select: RECORD_COLUMNS, where: { status: In(SERVING_STATUSES) } });
    return servingOf(rows);
  }

  /** Stores a new candidate and its 'register' rollout event, atomically. */
  register(
    version: NewModelVersion,
    actor: string,
  ): Promise<{ version: ModelVersionRecord; event: RolloutEventRecord }> {
    return this.dataSource.transaction(async (manager) => {
      const repository = manager.getRepository(ModelVersionEntity);
      const { id } = await repository.save(repository.create({ ...version, status: 'candidate' }));
      const event = await this.rollouts.record(manager, {
        action: 'register',
        actor,
        fromVersionId: null,
        toVersionId: id,
        percent: null,
      });
      return { version: await repository.findOneOrFail({ select: RECORD_COLUMNS, where: { id } }), event };
    });
  }

  /** Runs `work` in one transaction that holds the rollout lock; it commits when `work` resolves. */
  transition<T>(work: (tx: RolloutTransaction) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [ROLLOUT_LOCK_KEY]);
      return work(new RolloutTransaction(manager, this.rollouts));
    });
  }

  private async findRecord(db: DataSource, id: number): Promise<ModelVersionRecord | undefined> {
    return (await db.getRepository(ModelVersionEntity).findOne({ select: RECORD_COLUMNS, where: { id } })) ?? undefined;
  }
}

function servingOf(rows: ModelVersionRecord[]): ServingRecords {
  return {
    production: rows.find((r) => r.status === 'production'),
    canary: rows.find((r) => r.status === 'canary'),
    shadow: rows.find((r) => r.status === 'shadow'),
  };
}
