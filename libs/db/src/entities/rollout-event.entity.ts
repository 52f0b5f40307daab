import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * `shadow`: a version starts (or changes its share of) background scoring; `reject`: the canary is taken off and
 * archived (by the rollout policy, or by hand); `policy`: a version's rollout policy is set or cleared; `precision`:
 * the precision its serving graph is built in changes; `inconclusive`: the rollout policy's test ended without a
 * decision (the canary stays as it is); `skip`: a scheduled training run found no new event to train on and registered
 * nothing (its version is the one it would have continued).
 */
export const ROLLOUT_ACTIONS = [
  'register',
  'shadow',
  'canary',
  'promote',
  'reject',
  'rollback',
  'archive',
  'policy',
  'precision',
  'inconclusive',
  'skip',
] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

@Entity('rollout_events')
export class RolloutEventEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'text' })
  action!: RolloutAction;

  @Column({ type: 'text' })
  actor!: string;

  @Column({ name: 'from_version_id', type: 'int', nullable: true })
  fromVersionId!: number | null;

  @Column({ name: 'to_version_id', type: 'int', nullable: true })
  toVersionId!: number | null;

  @Column({ type: 'smallint', nullable: true })
  percent!: number | null;

  /**
   * What an automatic decision was based on (counts, metrics, test statistics); the policy itself for `policy`. The
   * registry's RolloutEvidence, read back through its reader.
   */
  @Column({ type: 'jsonb', nullable: true })
  evidence!: object | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
