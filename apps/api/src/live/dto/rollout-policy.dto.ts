import { ApiExtraModels, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { plainToInstance, Transform, Type, type TransformFnParams } from 'class-transformer';
import { IsInstance, ValidateBy, ValidateNested, type ValidationArguments } from 'class-validator';

import {
  ROLLOUT_POLICY_BOUNDS as BOUNDS,
  DEFAULT_ROLLOUT_POLICY,
  type Guardrails,
  type RolloutPolicy,
  type TaskPolicy,
} from '@app/registry';

import { IsNumberIn, IsOmittable, isPlainObject } from '../../platform/validation';

/**
 * The edge of PUT /admin/models/:id/rollout-policy: the shape of every field, at every level, is checked here by the
 * validation pipe (unknown keys refused with their path, `tasks.click.junk`; numbers must be JSON numbers; text rule on
 * every key and string). A new field is declared here with its decorators and needs nothing else: toRolloutPolicy
 * passes it on. What depends on the version's spec (which tasks may gate) is checked by checkRolloutPolicy in the
 * registry, inside the transition.
 */
export class TaskPolicyDto implements TaskPolicy {
  @IsNumberIn(BOUNDS.minEvents, {
    integer: true,
    description: 'Overrides the policy-wide minEvents.',
  })
  minEvents?: number;

  @IsNumberIn(BOUNDS.tolerance, {
    description: 'Overrides the policy-wide tolerance.',
  })
  tolerance?: number;
}

/** See Guardrails (libs/registry): each bound is checked only when set; a breach shown at the confidence rejects. */
export class GuardrailsDto implements Guardrails {
  @IsNumberIn(BOUNDS.calibration, {
    example: 0.2,
    description: 'Binary tasks: the canary’s mean prediction / label rate must stay within [1/(1 + c), 1 + c].',
  })
  calibration?: number;

  @IsNumberIn(BOUNDS.regressionError, {
    example: 0.1,
    description: 'Regression tasks: the canary’s RMSE must stay within (1 + r) × production’s.',
  })
  regressionError?: number;

  @IsNumberIn(BOUNDS.errorRate, {
    example: 0.01,
    description:
      'How much larger the share of the canary’s failed score requests (5xx) may be than production’s, over every API process.',
  })
  errorRate?: number;

  @IsNumberIn(BOUNDS.latencyP99Ms, {
    example: 50,
    description: 'Largest p99 scoring latency of the canary in ms, from every API process’s histogram.',
  })
  latencyP99Ms?: number;
}

/** See RolloutPolicy (libs/registry) for the rule. */
@ApiExtraModels(TaskPolicyDto)
export class RolloutPolicyDto {
  @IsNumberIn(BOUNDS.confidence, {
    default: 0.95,
    description: 'Probability that a decision is right, however often the policy looks (confidence sequences).',
  })
  confidence: number = 0.95;

  @IsNumberIn(BOUNDS.minEvents, {
    integer: true,
    default: 1000,
    description: 'Labelled predictions each side needs, per task, before any decision.',
  })
  minEvents: number = 1000;

  @IsNumberIn(BOUNDS.tolerance, {
    default: 0.01,
    description: 'How many AUC points worse than production the canary may be and still be promoted.',
  })
  tolerance: number = 0.01;

  @IsNumberIn(BOUNDS.minUsers, {
    integer: true,
    default: DEFAULT_ROLLOUT_POLICY.minUsers,
    description: 'Users with labelled predictions each side needs before any decision on AUC or calibration.',
  })
  minUsers: number = DEFAULT_ROLLOUT_POLICY.minUsers;

  @IsNumberIn(BOUNDS.maxHours, {
    positive: true,
    default: DEFAULT_ROLLOUT_POLICY.maxHours,
    description:
      'Hours after which a test still undecided ends inconclusive: the canary stays as it is, an event is recorded.',
  })
  maxHours: number = DEFAULT_ROLLOUT_POLICY.maxHours;

  @IsNumberIn(BOUNDS.maxEvents, {
    integer: true,
    description:
      'Labelled canary predictions (per gated task, the fewest) after which an undecided test ends inconclusive.',
  })
  maxEvents?: number;

  // A Map of TaskPolicyDto, so that class-validator checks each one (its unknown keys included) as it does a nested
  // object; a plain record would only be checked as a whole. Built here from the body's own keys: class-transformer's
  // Map conversion silently drops a key that names a Map method (`size`, `get`, `toString`), which left a policy
  // gating on no task at all.
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { $ref: getSchemaPath(TaskPolicyDto) },
    description: 'The gating tasks (binary), each with optional overrides; default: every binary task.',
    example: { click: { minEvents: 2000, tolerance: 0.005 }, like: {} },
  })
  @IsOmittable()
  @IsInstance(Map, { message: 'tasks must be an object keyed by task name' })
  @HasEntries()
  @ValidateNested()
  @Transform(taskPolicies)
  tasks?: Map<string, TaskPolicyDto>;

  @ApiPropertyOptional({ type: GuardrailsDto, description: 'Bounds beside AUC; a breach rejects the canary at once.' })
  @IsOmittable()
  @IsInstance(GuardrailsDto, { message: 'guardrails must be an object' })
  @ValidateNested()
  @Type(() => GuardrailsDto)
  guardrails?: GuardrailsDto;
}

function taskPolicies({ obj, key }: TransformFnParams): unknown {
  const tasks: unknown = (obj as Record<string, unknown>)[key];
  if (typeof tasks !== 'object' || tasks === null || Array.isArray(tasks)) return tasks;
  // Only an object becomes a TaskPolicyDto; anything else is read as null, which the nested check names
  // (tasks.click must be an object): a list would have become a list of them, whose elements alone are checked.
  return new Map(
    Object.entries(tasks).map(([name, policy]) => [
      name,
      isPlainObject(policy) ? plainToInstance(TaskPolicyDto, policy) : null,
    ]),
  );
}

/** A map with at least one entry: `tasks: {}` would gate on nothing and promote any canary without a test. */
function HasEntries(): PropertyDecorator {
  return ValidateBy({
    name: 'hasEntries',
    validator: {
      validate: (value: unknown) => !(value instanceof Map) || value.size > 0,
      defaultMessage: ({ property }: ValidationArguments) =>
        `${property} must name at least one task (leave it out to gate on every binary task)`,
    },
  });
}

/** The policy as the registry stores it: the validated body, tasks back to a plain object, guardrails a plain one. */
export function toRolloutPolicy({ tasks, guardrails, ...policy }: RolloutPolicyDto): RolloutPolicy {
  return {
    ...policy,
    ...(tasks && { tasks: Object.fromEntries(tasks) }),
    ...(guardrails && { guardrails: { ...guardrails } }),
  };
}
