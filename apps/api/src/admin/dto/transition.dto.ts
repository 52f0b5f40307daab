import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsObject, Max, Min } from 'class-validator';

import { SERVING_PRECISIONS, type ServingPrecision } from '@app/db';
import { FUSION_SCHEMA, type TransitionResult } from '@app/registry';

import { IsVersionId } from '../../platform/postgres-text.validator';
import { IsObjectiveWeights, IsOmittable } from '../../platform/validation';
import { mapModelVersion, ModelVersionDto, OBJECTIVE_WEIGHTS_SCHEMA } from './model-version.dto';
import { mapRolloutEvent, RolloutEventDto } from './rollout-event.dto';

/** How a canary or promote transition may change the version's ranking (the registry's RankingChange). */
class RankingChangeDto {
  @ApiPropertyOptional({
    ...OBJECTIVE_WEIGHTS_SCHEMA,
    description: 'New default blend for the version (a sum); tasks left out keep their current weight.',
  })
  @IsOmittable()
  @IsObjectiveWeights()
  objectiveWeights?: Record<string, number>;

  @ApiPropertyOptional({
    ...FUSION_SCHEMA,
    description: `The version's fusion rule from now on, instead of objectiveWeights. ${FUSION_SCHEMA.description}`,
  })
  @IsOmittable()
  @IsObject()
  fusion?: Record<string, unknown>;
}

export class CanaryDto extends RankingChangeDto {
  @ApiProperty({
    minimum: 0,
    maximum: 100,
    example: 10,
    description: 'Share of users, by a stable hash of their id, scored by this version.',
  })
  @IsInt()
  @Min(0)
  @Max(100)
  percent!: number;
}

export class PrecisionDto {
  @ApiProperty({
    enum: SERVING_PRECISIONS,
    example: 'int8',
    description: "int8 is refused (409) unless the version's holdout check allowed it; fp32 always works.",
  })
  @IsIn(SERVING_PRECISIONS)
  precision!: ServingPrecision;
}

export class PromoteDto extends RankingChangeDto {
  @ApiPropertyOptional({
    minimum: 1,
    description: 'When given, it must be the canary (a guard against promoting the wrong version).',
  })
  @IsOmittable()
  @IsVersionId()
  versionId?: number;
}

/** The recorded event and the serving versions right after the transition. */
export class TransitionResultDto {
  @ApiProperty({ type: RolloutEventDto })
  event!: RolloutEventDto;

  @ApiProperty({ type: ModelVersionDto, nullable: true })
  production!: ModelVersionDto | null;

  @ApiProperty({ type: ModelVersionDto, nullable: true })
  canary!: ModelVersionDto | null;

  @ApiProperty({ type: ModelVersionDto, nullable: true })
  shadow!: ModelVersionDto | null;
}

export function mapTransition({ event, production, canary, shadow }: TransitionResult): TransitionResultDto {
  return {
    event: mapRolloutEvent(event),
    production: production ? mapModelVersion(production) : null,
    canary: canary ? mapModelVersion(canary) : null,
    shadow: shadow ? mapModelVersion(shadow) : null,
  };
}
