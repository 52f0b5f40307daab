import { ApiProperty } from '@nestjs/swagger';

import { MODEL_STATUSES, SERVING_PRECISIONS, type ModelStatus, type ServingPrecision } from '@app/db';
import {
  FUSION_SCHEMA,
  type FusionRule,
  type ModelVersion,
  type RolloutPolicy,
  type VersionMetrics,
} from '@app/registry';

import 'class-validator';

import { IsVersionId, ToDecimalInt } from '../../platform/postgres-text.validator';

export const OBJECTIVE_WEIGHTS_SCHEMA = {
  description: 'Blend of the task scores into the ranking score, by task name.',
  type: 'object',
  additionalProperties: { type: 'number' },
  example: { click: 1, like: 0.5, watch_time: 0.01 },
} as const;

export class VersionIdParamsDto {
  @ApiProperty({ minimum: 1, example: 7 })
  @ToDecimalInt()
  @IsVersionId()
  id!: number;
}

/** A version as the admin API shows it: never the binaries. */
export class ModelVersionDto {
  @ApiProperty({ example: 7 })
  id!: number;

  @ApiProperty({ enum: MODEL_STATUSES })
  status!: ModelStatus;

  @ApiProperty({
    description: 'Validation metrics from training: `tasks` holds the metrics per task (auc, logloss, rmse …).',
    type: 'object',
    additionalProperties: true,
    example: { tasks: { click: { auc: 0.81, logloss: 0.42 } }, examples: 2000, bestEpoch: 6 },
  })
  metrics!: VersionMetrics;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Share of users (0–100) routed to this version while it is the canary.',
  })
  canaryPercent!: number | null;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Share of requests (0–100) this version also scores in the background while it is the shadow.',
  })
  shadowPercent!: number | null;

  @ApiProperty({
    type: 'object',
    nullable: true,
    additionalProperties: true,
    description: 'The automatic rollout policy applied while the version is the canary (PUT …/rollout-policy).',
    example: { confidence: 0.95, minEvents: 1000, tolerance: 0.01 },
  })
  rolloutPolicy!: RolloutPolicy | null;

  @ApiProperty(OBJECTIVE_WEIGHTS_SCHEMA)
  objectiveWeights!: Record<string, number>;

  @ApiProperty({
    ...FUSION_SCHEMA,
    nullable: true,
    description: 'A product fusion rule; null = the weighted sum of objectiveWeights.',
  })
  fusion!: FusionRule | null;

  @ApiProperty({ type: Number, nullable: true })
  parentVersionId!: number | null;

  @ApiProperty({ type: String, nullable: true })
  trainingJobId!: string | null;

  @ApiProperty({ type: String, nullable: true })
  note!: string | null;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  promotedAt!: string | null;

  @ApiProperty({ example: '3f5a…' })
  artifactSha256!: string;

  @ApiProperty({ description: 'An ONNX export is stored with the version (served with ONNX Runtime).' })
  hasOnnx!: boolean;

  @ApiProperty({ type: String, nullable: true })
  onnxSha256!: string | null;

  @ApiProperty({
    enum: SERVING_PRECISIONS,
    description:
      'The precision its serving graph is built in. int8 (dynamically quantised dense layers) only after the ' +
      "worker's holdout check (metrics.int8) found its AUC within 0.001 of fp32's: from registration when the check " +
      'judged every task (INT8_SERVING=auto), else with POST /admin/models/:id/precision.',
  })
  servingPrecision!: ServingPrecision;
}

export class ModelVersionDetailDto extends ModelVersionDto {
  @ApiProperty({
    description: 'The model spec (features, tasks, architecture, training settings).',
    type: 'object',
    additionalProperties: true,
  })
  spec!: Record<string, unknown>;
}

export function mapModelVersion(version: ModelVersion): ModelVersionDto {
  return {
    id: version.id,
    status: version.status,
    metrics: version.metrics,
    canaryPercent: version.canaryPercent,
    shadowPercent: version.shadowPercent,
    rolloutPolicy: version.rolloutPolicy,
    objectiveWeights: version.objectiveWeights,
    fusion: version.fusion,
    parentVersionId: version.parentVersionId,
    trainingJobId: version.trainingJobId,
    note: version.note,
    createdAt: version.createdAt.toISOString(),
    promotedAt: version.promotedAt?.toISOString() ?? null,
    artifactSha256: version.artifactSha256,
    hasOnnx: version.onnxSha256 !== null,
    onnxSha256: version.onnxSha256,
    servingPrecision: version.servingPrecision,
  };
}

export function mapModelVersionDetail(version: ModelVersion): ModelVersionDetailDto {
  return { ...mapModelVersion(version), spec: version.spec };
}
