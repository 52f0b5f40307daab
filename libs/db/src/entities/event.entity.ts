import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** One impression and what the user did with it (labels by task name); the training data of the next version. */
@Entity('events')
@Index('events_occurred_at', ['occurredAt'])
@Index('events_user_occurred_at', ['userId', 'occurredAt'])
export class EventEntity {
  /** Client-chosen id: logging the same event twice stores it once. */
  @PrimaryColumn({ name: 'event_id', type: 'text' })
  eventId!: string;

  @Column({ name: 'request_id', type: 'text', nullable: true })
  requestId!: string | null;

  @Column({ name: 'user_id', type: 'text' })
  userId!: string;

  @Column({ name: 'item_id', type: 'text' })
  itemId!: string;

  @Column({ name: 'model_version_id', type: 'int', nullable: true })
  modelVersionId!: number | null;

  @Column({ type: 'jsonb' })
  labels!: Record<string, number>;

  /** Sample weight in event-sourced training; null weighs 1. */
  @Column({ type: 'double precision', nullable: true })
  weight!: number | null;

  @Column({ type: 'jsonb', nullable: true })
  context!: Record<string, unknown> | null;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
