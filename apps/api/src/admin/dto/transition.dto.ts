import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

import type { TransitionResult } from '@app/registry';

import { IsVersionId } from '../../platform/postgres-text.validator';
import { IsObjectiveWeights } from '../../platform/validation';
import { mapModelVersion, ModelVersionDto, OBJECTIVE_WEIGHTS_SCHEMA } from './model-version.dto';
import { mapRolloutEvent, RolloutEventDto } from './rollout-event.dto';

const WEIGHTS_UPDATE = {
  ...OBJECTIVE_WEIGHTS_SCHEMA,
  description: 'New default blend for the version; tasks left out keep their current weight.',
};

export class CanaryDto {
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

  @ApiPropertyOptional(WEIGHTS_UPDATE)
  @IsOptional()
  @IsObjectiveWeights()
  objectiveWeights?: Record<string, number>;
}

export class PromoteDto {
  @ApiPropertyOptional({
    minimum: 1,
    description: 'When given, it must be the canary (a guard against promoting the wrong version).',
  })
  @IsOptional()
  @IsVersionId()
  versionId?: number;

  @ApiPropertyOptional(WEIGHTS_UPDATE)
  @IsOptional()
  @IsObjectiveWeights()
  objectiveWeights?: Record<string, number>;
}

/** The recorded event and the serving versions right after the transition. */
export class TransitionResultDto {
  @ApiProperty({ type: RolloutEventDto })
  event!: RolloutEventDto;

  @ApiProperty({ type: ModelVersionDto, nullable: true })
  production!: ModelVersionDto | null;

  @ApiProperty({ type: ModelVersionDto, nullable: true })
  canary!: ModelVersionDto | null;
}

export function mapTransition({ event, production, canary }: TransitionResult): TransitionResultDto {
  return {
    event: mapRolloutEvent(event),
    production: production ? mapModelVersion(production) : null,
    canary: canary ? mapModelVersion(canary) : null,
  };
}
