import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, In } from 'typeorm';

import { RolloutEventEntity, type RolloutAction } from '../entities/rollout-event.entity';

export interface NewRolloutEvent {
  action: RolloutAction;
  actor: string;
  /** The version leaving the role (replaced canary, previous production, archived version), if any. */
  fromVersionId: number | null;
  /** The version entering it (new version, canary, promoted or restored production), if any. */
  toVersionId: number | null;
  percent: number | null;
  /** What an automatic decision was based on (none for a decision made by hand); the policy for `policy` events. */
  evidence?: object | null;
}

export interface RolloutEventRecord extends NewRolloutEvent {
  id: number;
  evidence: object | null;
  createdAt: Date;
}

export interface RolloutRecordPage {
  items: RolloutEventRecord[];
  total: number;
}

/** The rollout history. Writes take the caller's transaction manager: an event is only ever stored with its change. */
@Injectable()
export class RolloutRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async record(manager: EntityManager, event: NewRolloutEvent): Promise<RolloutEventRecord> {
    const saved = await manager.getRepository(RolloutEventEntity).save(manager.create(RolloutEventEntity, event));
    return toRecord(saved);
  }

  /** Newest first. */
  async list(limit: number, offset: number): Promise<RolloutRecordPage> {
    const [rows, total] = await this.dataSource.getRepository(RolloutEventEntity).findAndCount({
      order: { id: 'DESC' },
      take: limit,
      skip: offset,
    });
    return { items: rows.map(toRecord), total };
  }

  /**
   * The latest event of each of `actions` naming `versionId` as the version entering (id and time only: the policy
   * check reads its test's clock with this one query, not one per question).
   */
  async lastOfEach(
    versionId: number,
    actions: readonly RolloutAction[],
    manager: EntityManager = this.dataSource.manager,
  ): Promise<Pick<RolloutEventRecord, 'id' | 'action' | 'createdAt'>[]> {
    const rows: { id: string; action: RolloutAction; created_at: Date }[] = await manager.query(
      `SELECT DISTINCT ON (action) id, action, created_at FROM rollout_events
       WHERE to_version_id = $1 AND action = ANY($2) ORDER BY action, id DESC`,
      [versionId, actions],
    );
    return rows.map((r) => ({ id: Number(r.id), action: r.action, createdAt: r.created_at }));
  }

  /** The latest event of one of `actions` that names `versionId` as the version entering, if any. */
  async lastEntered(versionId: number, actions: readonly RolloutAction[]): Promise<RolloutEventRecord | undefined> {
    const event = await this.dataSource
      .getRepository(RolloutEventEntity)
      .findOne({ where: { action: In([...actions]), toVersionId: versionId }, order: { id: 'DESC' } });
    return event ? toRecord(event) : undefined;
  }

  /** The `skip` recorded for training job `job`, if any (one at most: rollout_events_skip_job). */
  async skipOf(job: string, manager: EntityManager = this.dataSource.manager): Promise<RolloutEventRecord | undefined> {
    const event = await manager
      .getRepository(RolloutEventEntity)
      .createQueryBuilder('e')
      .where(`e.action = 'skip' AND e.evidence #>> '{skipped,job}' = :job`, { job })
      .getOne();
    return event ? toRecord(event) : undefined;
  }

  /** The version that was production when `versionId` was last promoted over it, if any. */
  async promotedOver(manager: EntityManager, versionId: number): Promise<number | null> {
    const promotion = await manager.getRepository(RolloutEventEntity).findOne({
      where: { action: 'promote', toVersionId: versionId },
      order: { id: 'DESC' },
    });
    return promotion?.fromVersionId ?? null;
  }
}

function toRecord(row: RolloutEventEntity): RolloutEventRecord {
  return {
    // bigserial comes back as a string; the history will not outgrow 2^53 events.
    id: Number(row.id),
    action: row.action,
    actor: row.actor,
    fromVersionId: row.fromVersionId,
    toVersionId: row.toVersionId,
    percent: row.percent,
    evidence: row.evidence,
    createdAt: row.createdAt,
  };
}
