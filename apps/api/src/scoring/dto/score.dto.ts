import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsObject } from 'class-validator';

import { FUSION_SCHEMA } from '@app/registry';

import { IsEntityId, MAX_ID_LENGTH } from '../../platform/postgres-text.validator';
import {
  FastValidated,
  IsObjectiveWeights,
  IsOmittable,
  IsRequestContext,
  IsUniqueStrings,
} from '../../platform/validation';
import { MAX_CANDIDATES } from './score-request.limits';
import { isValidScoreRequest } from './score-request.rules';

/** The decorators are the rules and the OpenAPI schema; isValidScoreRequest is their fast check on the hot path. */
@FastValidated(isValidScoreRequest)
export class ScoreRequestDto {
  @ApiProperty({ example: 'u-42', minLength: 1, maxLength: 256 })
  @IsEntityId()
  userId!: string;

  @ApiProperty({
    type: [String],
    example: ['i-1', 'i-2', 'i-3'],
    minItems: 1,
    maxItems: MAX_CANDIDATES,
    uniqueItems: true,
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_CANDIDATES)
  @IsUniqueStrings(1, MAX_ID_LENGTH)
  itemIds!: string[];

  @IsRequestContext(
    'Request-time features (device, hour …), shared by every candidate; stored user and item features win on a name clash.',
  )
  context?: Record<string, string | number | boolean | string[]>;

  @ApiPropertyOptional({
    description:
      "Blend weight per task name, replacing the serving model's default weights as a whole (a task left out weighs 0). " +
      'score = Σ weight × task score; regression scores enter in their label units, unscaled.',
    type: 'object',
    additionalProperties: { type: 'number' },
    example: { click: 1, like: 0.5 },
  })
  @IsOmittable()
  @IsObjectiveWeights()
  objectiveWeights?: Record<string, number>;

  @ApiPropertyOptional({
    ...FUSION_SCHEMA,
    description: `This request's fusion rule, replacing the version's (not together with objectiveWeights). ${FUSION_SCHEMA.description}`,
  })
  @IsOmittable()
  @IsObject()
  fusion?: Record<string, unknown>;

  @ApiPropertyOptional({ description: "Add each task's gate weights over the experts to every item." })
  @IsOmittable()
  @IsBoolean()
  explain?: boolean;
}

export class ScoredItemDto {
  @ApiProperty({ example: 'i-2' })
  itemId!: string;

  @ApiProperty({
    description: "The fused task scores (see the response's `fusion`); items are sorted by it, highest first.",
    example: 0.41,
  })
  score!: number;

  @ApiProperty({
    description:
      'Per task: a probability for binary tasks, a value in label units for regression ones. A task with ' +
      '`conditionalOn` (ESMM) or `dependsOn` (AITM) scores its joint event here, P(parent ∧ task), e.g. ' +
      'click-and-convert.',
    type: 'object',
    additionalProperties: { type: 'number' },
    example: { click: 0.31, like: 0.2 },
  })
  scores!: Record<string, number>;

  @ApiPropertyOptional({
    description:
      'Per task with `conditionalOn` (ESMM) or `dependsOn` (AITM): P(task | parent), e.g. a conversion given a ' +
      "click (uncalibrated; AITM's is its score over its parent's, at most 1). Absent when the model has no such task.",
    type: 'object',
    additionalProperties: { type: 'number' },
    example: { conversion: 0.12 },
  })
  conditional?: Record<string, number>;

  @ApiPropertyOptional({ description: 'The item has no stored features: it was scored with defaults.', enum: [true] })
  unknown?: true;

  @ApiPropertyOptional({
    description: "With explain: per task, its gate's weights over the experts it mixes (they sum to 1).",
    type: 'object',
    additionalProperties: { type: 'array', items: { type: 'number' } },
  })
  gates?: Record<string, number[]>;
}

export class FusionUsedDto {
  @ApiProperty({ enum: ['sum', 'product'], description: 'The rule that ranked the items.' })
  type!: 'sum' | 'product';

  @ApiProperty({
    enum: ['model', 'request'],
    description: "`model`: the version's rule (rollout); `request`: this request's fusion or objectiveWeights.",
  })
  source!: 'model' | 'request';
}

export class ScoreResponseDto {
  @ApiProperty({ description: 'The x-request-id of this call (given or generated), also in its logs.' })
  requestId!: string;

  @ApiProperty({ type: 'integer', description: 'Id of the model version that scored this request.', example: 7 })
  modelVersion!: number;

  @ApiProperty({ enum: ['production', 'canary'] })
  modelRole!: 'production' | 'canary';

  @ApiProperty({ type: FusionUsedDto })
  fusion!: FusionUsedDto;

  @ApiProperty({ type: [ScoredItemDto] })
  items!: ScoredItemDto[];

  @ApiPropertyOptional({ description: 'The user has no stored features: scored with defaults.', enum: [true] })
  userUnknown?: true;
}

export class UnscoredItemDto {
  @ApiProperty({ example: 'i-1' })
  itemId!: string;
}

/** The answer to a request that allowed one when it could not be scored in time. */
export class DegradedScoreResponseDto {
  @ApiProperty({ description: 'The x-request-id of this call (given or generated), also in its logs.' })
  requestId!: string;

  @ApiProperty({ enum: [true], description: 'Not scored: the candidates come back in request order, without scores.' })
  degraded!: true;

  @ApiProperty({
    enum: ['overloaded', 'deadline'],
    description:
      '`overloaded`: the work already admitted would have made it late; `deadline`: its deadline passed before ' +
      'inference, or would have before the pass could be done.',
  })
  degradedReason!: 'overloaded' | 'deadline';

  @ApiProperty({ type: [UnscoredItemDto], description: 'The candidates, in request order.' })
  items!: UnscoredItemDto[];
}
