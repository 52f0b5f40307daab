import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type, type TransformFnParams } from 'class-transformer';
import { IsBoolean, IsInt, IsObject, IsOptional, IsString, Max, MaxLength, Min, ValidateNested } from 'class-validator';

import type { CadenceState, LastRun, RetrainScheduleState } from '@app/queue';
import type { RolloutPolicy } from '@app/registry';

import { RolloutPolicyDto, toRolloutPolicy } from '../../live/dto/rollout-policy.dto';
import { IsNumberIn, IsOmittable } from '../../platform/validation';

class UpdateCadenceDto {
  @ApiProperty({
    example: '0 3 * * *',
    description: 'Cron in UTC: 5 fields, or 6 with seconds first (stored with single spaces between them).',
  })
  @IsString()
  @MaxLength(200)
  // One form per schedule: `0 3 * * *\n` or tab-separated fields were stored, and shown, as given.
  @Transform(({ value }: TransformFnParams) =>
    typeof value === 'string' ? value.trim().split(/\s+/).join(' ') : value,
  )
  cron!: string;

  @ApiPropertyOptional({
    type: RolloutPolicyDto,
    nullable: true,
    description:
      "Set on each canary this cadence's runs produce, so that the live rollout policy promotes or rejects it on its own; null: left to a person. Unchanged when left out.",
  })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => RolloutPolicyDto)
  rolloutPolicy?: RolloutPolicyDto | null;
}

export class UpdateTrainingScheduleDto extends UpdateCadenceDto {
  @IsNumberIn(
    { min: 0.01, max: 365 },
    { example: 7, description: 'Days of events before each run to train on; unchanged when left out.' },
  )
  windowDays?: number;

  @ApiPropertyOptional({
    example: true,
    description:
      "Start each run from production's weights (its vocabularies grown by the window's new ids) instead of a fresh model; unchanged when left out.",
  })
  @IsOmittable()
  @IsBoolean()
  warmStart?: boolean;

  @ApiPropertyOptional({
    type: Number,
    minimum: 1,
    maximum: 1000,
    nullable: true,
    example: 1,
    description: "Epochs of each run; null: the spec's. Unchanged when left out.",
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  epochs?: number | null;
}

export class UpdateIncrementalScheduleDto extends UpdateCadenceDto {
  @IsNumberIn(
    { min: 0, max: 1 },
    {
      example: 0.2,
      description: "Older events replayed per new one, drawn from production's window; unchanged when left out.",
    },
  )
  replay?: number;

  @IsNumberIn({ min: 1, max: 1000 }, { integer: true, example: 1, description: 'Unchanged when left out.' })
  epochs?: number;
}

class LastRunDto {
  @ApiProperty()
  jobId!: string;

  @ApiProperty({ format: 'date-time' })
  finishedAt!: string;

  @ApiProperty({
    enum: ['trained', 'skipped', 'failed'],
    description: 'trained: a version registered; skipped: no new event to train on; failed: after its last attempt.',
  })
  outcome!: LastRun['outcome'];

  @ApiPropertyOptional({ description: 'The version trained (trained only).' })
  versionId?: number;

  @ApiPropertyOptional({ enum: ['canary', 'candidate'], description: 'What the gate made of it (trained only).' })
  decision?: 'canary' | 'candidate';

  @ApiProperty({ description: "The gate's reason, the skip's or the failure's." })
  reason!: string;
}

class CadenceDto {
  @ApiProperty({ example: '0 3 * * *' })
  cron!: string;

  @ApiProperty({ example: 'UTC' })
  timezone!: string;

  @ApiProperty()
  paused!: boolean;

  @ApiProperty({ type: RolloutPolicyDto, nullable: true })
  rolloutPolicy!: RolloutPolicy | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Next run; null while paused.' })
  nextRunAt!: string | null;

  @ApiProperty({
    type: LastRunDto,
    nullable: true,
    description:
      "The last finished run; null if none is among the training queue's last 100 completed and failed jobs.",
  })
  lastRun!: LastRunDto | null;

  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;

  @ApiProperty({
    example: 'admin',
    description: "'config' while the cadence is the one seeded from RETRAIN_* settings.",
  })
  updatedBy!: string;
}

export class IncrementalScheduleDto extends CadenceDto {
  @ApiProperty({ example: 0.2 })
  replay!: number;

  @ApiProperty({ example: 1 })
  epochs!: number;
}

/** The full retrain at the top level (as before there were two cadences), the incremental one under `incremental`. */
export class TrainingScheduleDto extends CadenceDto {
  @ApiProperty({ example: 7 })
  windowDays!: number;

  @ApiProperty({ description: "Each run starts from production's weights rather than a fresh model." })
  warmStart!: boolean;

  @ApiProperty({ type: Number, nullable: true, example: null, description: "Epochs of each run; null: the spec's." })
  epochs!: number | null;

  @ApiProperty({
    type: IncrementalScheduleDto,
    description: 'Warm starts from production on the events since its data ended (e.g. hourly).',
  })
  incremental!: IncrementalScheduleDto;
}

function mapCadence({
  cron,
  timezone,
  paused,
  rolloutPolicy,
  nextRunAt,
  lastRun,
  updatedAt,
  updatedBy,
}: CadenceState<'full' | 'incremental'>): CadenceDto {
  return { cron, timezone, paused, rolloutPolicy, nextRunAt, lastRun, updatedAt, updatedBy };
}

export function mapTrainingSchedule(state: RetrainScheduleState): TrainingScheduleDto {
  const { replay, epochs } = state.incremental;
  return {
    ...mapCadence(state),
    windowDays: state.windowDays,
    warmStart: state.warmStart,
    epochs: state.epochs,
    incremental: { ...mapCadence(state.incremental), replay, epochs },
  };
}

/** A cadence's new policy: unchanged when left out (undefined), cleared with null. */
export function policyChange(policy: RolloutPolicyDto | null | undefined): RolloutPolicy | null | undefined {
  return policy && toRolloutPolicy(policy);
}
