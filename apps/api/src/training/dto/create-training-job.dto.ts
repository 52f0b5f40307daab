import { ApiExtraModels, ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { plainToInstance, Transform, Type, type TransformFnParams } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsObject,
  IsString,
  Matches,
  MaxLength,
  MinLength,
  ValidateBy,
  ValidateNested,
} from 'class-validator';

import type { ModelSpecInput } from '@app/mmoe';
import type { TrainingDataSource, TrainingOverrides, WarmStart } from '@app/queue';

import { RolloutPolicyDto, toRolloutPolicy } from '../../live/dto/rollout-policy.dto';
import { IsNotFuture, IsTimestamp, IsVersionId } from '../../platform/postgres-text.validator';
import { IsNumberIn, IsOmittable } from '../../platform/validation';
import type { NewTrainingJob } from '../training-jobs.service';

const SOURCE_KINDS = ['events', 'csv', 'incremental'] as const;

/** What `source.kind` selects; a kind that is neither lands here and fails on `kind`. */
class TrainingSourceDto {
  @ApiProperty({ enum: SOURCE_KINDS })
  @IsIn(SOURCE_KINDS)
  kind!: TrainingDataSource['kind'];
}

export class EventsSourceDto extends TrainingSourceDto {
  @ApiProperty({ enum: ['events'] })
  declare kind: 'events';

  @ApiProperty({ example: '2026-11-01T00:00:00Z', description: 'Start of the window of logged events (inclusive).' })
  @IsTimestamp()
  from!: string;

  @ApiProperty({
    example: '2026-11-15T00:00:00Z',
    description:
      'End of the window (exclusive); after `from`, and not later than now (5 minutes of clock skew allowed).',
  })
  @IsTimestamp()
  @IsNotFuture()
  to!: string;
}

export class CsvSourceDto extends TrainingSourceDto {
  @ApiProperty({ enum: ['csv'] })
  declare kind: 'csv';

  @ApiProperty({
    example: '/data/interactions.csv',
    description: "A CSV file on the worker's disk, in the CLI's format.",
  })
  @IsString()
  @MinLength(1)
  @MaxLength(4096)
  path!: string;
}

export class IncrementalSourceDto extends TrainingSourceDto {
  @ApiProperty({ enum: ['incremental'] })
  declare kind: 'incremental';

  @ApiPropertyOptional({
    example: '2026-11-15T12:00:00Z',
    description:
      "End of the window (exclusive), which starts where the warm start's parent's training rows ended (its held-out events come first); not later than now (5 minutes of clock skew allowed); default: when the job is queued. A window with no event is refused.",
  })
  @IsOmittable()
  @IsTimestamp()
  @IsNotFuture()
  to?: string;

  @IsNumberIn(
    { min: 0, max: 1 },
    {
      example: 0.2,
      description:
        "Older events of the parent's lineage (at most TRAINING_REPLAY_DAYS before the window), replayed per new event (against forgetting).",
    },
  )
  replay?: number;
}

export class WarmStartDto implements WarmStart {
  @ApiProperty({
    oneOf: [
      { type: 'string', enum: ['production'] },
      { type: 'integer', minimum: 1 },
    ],
    example: 'production',
    description: 'The version whose weights the job starts from: "production" (when the job starts) or a version id.',
  })
  @ValidateBy({
    name: 'isWarmStartFrom',
    validator: {
      validate: (value: unknown) =>
        value === 'production' || (Number.isInteger(value) && (value as number) >= 1 && (value as number) < 2 ** 31),
      defaultMessage: () => 'from must be "production" or a version id',
    },
  })
  from!: WarmStart['from'];
}

export class TrainingOverridesDto implements TrainingOverrides {
  @IsNumberIn({ min: 1, max: 1000 }, { integer: true })
  epochs?: number;

  @IsNumberIn({ min: 1, max: 65536 }, { integer: true })
  batchSize?: number;

  @IsNumberIn({ min: 1e-6, max: 1 })
  learningRate?: number;

  // Beyond the safe integers a seed is not the number sent (2^60 + 1 reads as 2^60); the worker refuses it.
  @IsNumberIn({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }, { integer: true })
  seed?: number;
}

const SOURCE_TYPES: Record<TrainingDataSource['kind'], new () => TrainingSourceDto> = {
  events: EventsSourceDto,
  csv: CsvSourceDto,
  incremental: IncrementalSourceDto,
};

/**
 * The source's DTO by its kind (an unknown kind: the base, whose check names it). Only an object is converted:
 * class-transformer's discriminator read `kind` off each element of a list, and `[null]` threw (a 500).
 */
function trainingSource({ value }: TransformFnParams): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const kind = (value as { kind?: unknown }).kind;
  const type =
    typeof kind === 'string' && Object.hasOwn(SOURCE_TYPES, kind)
      ? SOURCE_TYPES[kind as TrainingDataSource['kind']]
      : TrainingSourceDto;
  return plainToInstance(type, value);
}

/** POST /admin/training-jobs: a TrainingJobPayload without `requestedBy` (the caller is the admin). */
@ApiExtraModels(EventsSourceDto, CsvSourceDto, IncrementalSourceDto)
export class CreateTrainingJobDto {
  @ApiProperty({
    oneOf: [
      { $ref: getSchemaPath(EventsSourceDto) },
      { $ref: getSchemaPath(CsvSourceDto) },
      { $ref: getSchemaPath(IncrementalSourceDto) },
    ],
    description: 'The training data; `incremental` needs a warmStart.',
  })
  @IsObject()
  @ValidateNested()
  @Transform(trainingSource)
  source!: EventsSourceDto | CsvSourceDto | IncrementalSourceDto;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      "A model spec (as for `cli train`); defaults to the parent version's, or production's when no parent is named.",
  })
  @IsOmittable()
  @IsObject()
  spec?: ModelSpecInput;

  @ApiPropertyOptional({ minimum: 1, description: 'The version this one retrains; recorded on the new version.' })
  @IsOmittable()
  @IsVersionId()
  parentVersionId?: number;

  @ApiPropertyOptional({
    type: WarmStartDto,
    description:
      "Start from this version's weights (its vocabularies grown by the new ids) rather than from scratch; recorded as the parent.",
  })
  @IsOmittable()
  @IsObject()
  @ValidateNested()
  @Type(() => WarmStartDto)
  warmStart?: WarmStartDto;

  @ApiPropertyOptional({
    type: RolloutPolicyDto,
    description:
      'Set on the new version when the gate makes it the canary, so that the live rollout policy promotes or rejects it on its own.',
  })
  @IsOmittable()
  @IsObject()
  @ValidateNested()
  @Type(() => RolloutPolicyDto)
  rolloutPolicy?: RolloutPolicyDto;

  @ApiPropertyOptional({ type: TrainingOverridesDto, description: "Overrides of the spec's training settings." })
  @IsOmittable()
  @IsObject()
  @ValidateNested()
  @Type(() => TrainingOverridesDto)
  overrides?: TrainingOverridesDto;

  @ApiPropertyOptional({
    example: true,
    description:
      "After the gate has judged the candidate on the held-out slice, train it one epoch more on that slice before it is registered, so that the version served has learnt from the latest events (its metrics stay the gate's). Default: TRAINING_REFIT (`full`: every job but an incremental one).",
  })
  @IsOmittable()
  @IsBoolean()
  refit?: boolean;

  @IsNumberIn(
    { min: 0.05, max: 0.5 },
    { example: 0.2, description: 'Share of the data, the latest in time, held out for evaluation.' },
  )
  holdoutFraction?: number;

  @ApiPropertyOptional({
    example: 'user_id',
    maxLength: 128,
    description:
      'Column grouping the held-out rows for GAUC (AUC within each group, weighted by its rows). Events carry `user_id` ' +
      'and `item_id`; the default is `user_id` for events and none for CSV.',
  })
  @IsOmittable()
  @IsString()
  @MaxLength(128)
  @Matches(/^[A-Za-z0-9_.:-]+$/, { message: 'groupBy may contain only letters, digits and _ . : -' })
  groupBy?: string;
}

export function toNewTrainingJob({
  source,
  spec,
  parentVersionId,
  warmStart,
  rolloutPolicy,
  overrides,
  refit,
  holdoutFraction,
  groupBy,
}: CreateTrainingJobDto): NewTrainingJob {
  return {
    source: sourceOf(source),
    spec,
    parentVersionId,
    warmStart: warmStart && { from: warmStart.from },
    rolloutPolicy: rolloutPolicy && toRolloutPolicy(rolloutPolicy),
    overrides: overrides && { ...overrides },
    refit,
    holdoutFraction,
    groupBy,
  };
}

/** Timestamps in one form; an incremental window ends now unless it says otherwise (a retry then reads the same). */
function sourceOf(source: CreateTrainingJobDto['source']): TrainingDataSource {
  const iso = (value: string) => new Date(value).toISOString();
  switch (source.kind) {
    case 'events':
      return { kind: 'events', from: iso(source.from), to: iso(source.to) };
    case 'csv':
      return { kind: 'csv', path: source.path };
    case 'incremental':
      return {
        kind: 'incremental',
        to: source.to === undefined ? new Date().toISOString() : iso(source.to),
        ...(source.replay !== undefined && { replay: source.replay }),
      };
  }
}
