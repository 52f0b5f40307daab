import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsNumber, IsObject, IsOptional, Max, Min } from 'class-validator';

export class ShadowDto {
  @ApiProperty({
    minimum: 0,
    maximum: 100,
    example: 20,
    description: 'Share of requests the version also scores in the background; its answers are logged, never served.',
  })
  @IsInt()
  @Min(0)
  @Max(100)
  percent!: number;
}

export class TaskPolicyDto {
  @ApiPropertyOptional({ minimum: 1, description: 'Overrides the policy-wide minEvents for this task.' })
  minEvents?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1, description: 'Overrides the policy-wide tolerance for this task.' })
  tolerance?: number;
}

/** See RolloutPolicy (libs/registry) for the rule. */
export class RolloutPolicyDto {
  @ApiPropertyOptional({
    minimum: 0.5,
    maximum: 0.9999,
    default: 0.95,
    description: 'One-sided confidence of each decision (DeLong test on AUC).',
  })
  @IsOptional()
  @IsNumber()
  @Min(0.5)
  @Max(0.9999)
  confidence: number = 0.95;

  @ApiPropertyOptional({
    minimum: 1,
    default: 1000,
    description: 'Labelled predictions each side needs, per task, before any decision.',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  minEvents: number = 1000;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 0.5,
    default: 0.01,
    description: 'How many AUC points worse than production the canary may be and still be promoted.',
  })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(0.5)
  tolerance: number = 0.01;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/TaskPolicyDto' },
    description: 'The gating tasks (binary), each with optional overrides; default: every binary task.',
    example: { click: { minEvents: 2000, tolerance: 0.005 }, like: {} },
  })
  @IsOptional()
  @IsObject()
  tasks?: Record<string, TaskPolicyDto>;
}
