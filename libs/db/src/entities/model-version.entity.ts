import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export const MODEL_STATUSES = ['candidate', 'shadow', 'canary', 'production', 'archived', 'failed'] as const;
export type ModelStatus = (typeof MODEL_STATUSES)[number];
export const SERVING_PRECISIONS = ['fp32', 'int8'] as const;
export type ServingPrecision = (typeof SERVING_PRECISIONS)[number];

/**
 * A model version's row. Its JSON columns (metrics, rollout_policy, fusion) are objects here: their shapes are the
 * registry's types, written only by the registry and read back through its reader (libs/registry
 * model-version.reader), which knows the shapes older code stored.
 */
@Entity('model_versions')
@Index('model_versions_one_production', ['status'], { unique: true, where: `status = 'production'` })
@Index('model_versions_one_canary', ['status'], { unique: true, where: `status = 'canary'` })
@Index('model_versions_one_shadow', ['status'], { unique: true, where: `status = 'shadow'` })
export class ModelVersionEntity {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'text' })
  status!: ModelStatus;

  @Column({ type: 'jsonb' })
  spec!: Record<string, unknown>;

  @Column({ type: 'jsonb' })
  preprocessing!: Record<string, unknown>;

  /** What the version records of its training and evaluation (the registry's VersionMetrics). */
  @Column({ type: 'jsonb', default: () => `'{}'` })
  metrics!: object;

  /** The tfjs artifact (spec, preprocessing and weights; see libs/mmoe artifact.codec). */
  @Column({ type: 'bytea' })
  artifact!: Buffer;

  @Column({ name: 'artifact_sha256', type: 'text' })
  artifactSha256!: string;

  /** The same network as ONNX, for onnxruntime-node serving. */
  @Column({ type: 'bytea', nullable: true })
  onnx!: Buffer | null;

  @Column({ name: 'onnx_sha256', type: 'text', nullable: true })
  onnxSha256!: string | null;

  /**
   * The precision API processes build this version's serving graph in; int8 only after its holdout check passed (from
   * registration under INT8_SERVING=auto when it judged every task).
   */
  @Column({ name: 'serving_precision', type: 'text', default: 'fp32' })
  servingPrecision!: ServingPrecision;

  @Column({ name: 'parent_version_id', type: 'int', nullable: true })
  parentVersionId!: number | null;

  @Column({ name: 'training_job_id', type: 'text', nullable: true })
  trainingJobId!: string | null;

  /** Share of users (0–100) routed to this version while it is the canary. */
  @Column({ name: 'canary_percent', type: 'smallint', nullable: true })
  canaryPercent!: number | null;

  /** Share of requests (0–100) this version also scores in the background while it is the shadow. */
  @Column({ name: 'shadow_percent', type: 'smallint', nullable: true })
  shadowPercent!: number | null;

  /** When and how the rollout promotes or rejects this version on its own while it is the canary (RolloutPolicy). */
  @Column({ name: 'rollout_policy', type: 'jsonb', nullable: true })
  rolloutPolicy!: object | null;

  /** Default blend of task scores into the ranking score, by task name. */
  @Column({ name: 'objective_weights', type: 'jsonb' })
  objectiveWeights!: Record<string, number>;

  /**
   * The score-fusion rule (a product FusionRule: `{type: 'product', exponents, transforms}`); null = the weighted sum
   * of objectiveWeights. Validated by the registry's fusion rules before it is written.
   */
  @Column({ type: 'jsonb', nullable: true })
  fusion!: object | null;

  @Column({ type: 'text', nullable: true })
  note!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'promoted_at', type: 'timestamptz', nullable: true })
  promotedAt!: Date | null;
}
