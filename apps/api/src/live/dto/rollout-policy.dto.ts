import { ApiExtraModels, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInstance, IsInt, IsNumber, IsOptional, Max, Min, ValidateNested } from 'class-validator';

import type { RolloutPolicy, TaskPolicy } from '@app/registry';

const MAX_MIN_EVENTS = 100_000_000;
const MAX_TOLERANCE = 0.5;
const FINITE = { allowNaN: false, allowInfinity: false } as const;

/**
 * The edge of PUT /admin/models/:id/rollout-policy: the shape of every field, at every level, is checked here by the
 * validation pipe (unknown keys refused with their path, `tasks.click.junk`; numbers must be JSON numbers; text rule on
 * every key and string). A new field is declared here with its decorators and needs nothing else: toRolloutPolicy
 * passes it on. What depends on the version's spec (which tasks may gate) is checked by checkRolloutPolicy in the
 * registry, inside the transition.
 */
export class TaskPolicyDto implements TaskPolicy {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_MIN_EVENTS, description: 'Overrides the policy-wide minEvents.' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_MIN_EVENTS)
  minEvents?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: MAX_TOLERANCE, description: 'Overrides the policy-wide tolerance.' })
  @IsOptional()
  @IsNumber(FINITE)
  @Min(0)
  @Max(MAX_TOLERANCE)
  tolerance?: number;
}

/** See RolloutPolicy (libs/registry) for the rule. */
@ApiExtraModels(TaskPolicyDto)
export class RolloutPolicyDto {
  @ApiPropertyOptional({
    minimum: 0.5,
    maximum: 0.9999,
    default: 0.95,
    description: 'One-sided confidence of each decision (DeLong test on AUC).',
  })
  @IsOptional()
  @IsNumber(FINITE)
  @Min(0.5)
  @Max(0.9999)
  confidence: number = 0.95;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: MAX_MIN_EVENTS,
    default: 1000,
    description: 'Labelled predictions each side needs, per task, before any decision.',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_MIN_EVENTS)
  minEvents: number = 1000;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: MAX_TOLERANCE,
    default: 0.01,
    description: 'How many AUC points worse than production the canary may be and still be promoted.',
  })
  @IsOptional()
  @IsNumber(FINITE)
  @Min(0)
  @Max(MAX_TOLERANCE)
  tolerance: number = 0.01;

  // A Map, so that class-transformer builds a TaskPolicyDto per task and class-validator checks each one (its unknown
  // keys included) as it does a nested object; a plain record would only be checked as a whole.
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { $ref: getSchemaPath(TaskPolicyDto) },
    description: 'The gating tasks (binary), each with optional overrides; default: every binary task.',
    example: { click: { minEvents: 2000, tolerance: 0.005 }, like: {} },
  })
  @IsOptional()
  @IsInstance(Map, { message: 'tasks must be an object keyed by task name' })
  @ValidateNested()
  @Type(() => TaskPolicyDto)
  tasks?: Map<string, TaskPolicyDto>;
}

/** The policy as the registry stores it: the validated body, tasks back to a plain object. */
export function toRolloutPolicy({ tasks, ...policy }: RolloutPolicyDto): RolloutPolicy {
  return { ...policy, ...(tasks && { tasks: Object.fromEntries(tasks) }) };
}
