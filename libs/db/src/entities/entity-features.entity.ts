import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Feature vectors are the source of truth here; Redis only caches them. */
abstract class EntityFeatures {
  @PrimaryColumn({ name: 'entity_id', type: 'text' })
  entityId!: string;

  @Column({ type: 'jsonb' })
  features!: Record<string, unknown>;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

@Entity('user_features')
export class UserFeaturesEntity extends EntityFeatures {
  /** Per event-fed list built from events: its feed and newest positive event (see EventRepository.insertNew). */
  @Column({ name: 'fed_heads', type: 'jsonb', default: () => "'{}'" })
  fedHeads!: Record<string, unknown>;
}

@Entity('item_features')
export class ItemFeaturesEntity extends EntityFeatures {}
