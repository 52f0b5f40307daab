import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const ROLLOUT_ACTIONS = ['register', 'canary', 'promote', 'rollback', 'archive'] as const;
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

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
