import { ApiExtraModels, ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';

import type { ModelSpecInput } from '@app/mmoe';
import type { TrainingDataSource, TrainingOverrides } from '@app/queue';

import { IsTimestamp, IsVersionId } from '../../platform/postgres-text.validator';
import type { NewTrainingJob } from '../training-jobs.service';

const SOURCE_KINDS = ['events', 'csv'] as const;

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

  @ApiProperty({ example: '2026-11-15T00:00:00Z', description: 'End of the window (exclusive); after `from`.' })
  @IsTimestamp()
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

export class TrainingOverridesDto implements TrainingOverrides {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  epochs?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 65536 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65536)
  batchSize?: number;

  @ApiPropertyOptional({ minimum: 1e-6, maximum: 1 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1e-6)
  @Max(1)
  learningRate?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  seed?: number;
}

/** POST /admin/training-jobs: a TrainingJobPayload without `requestedBy` (the caller is the admin). */
@ApiExtraModels(EventsSourceDto, CsvSourceDto)
export class CreateTrainingJobDto {
  @ApiProperty({
    oneOf: [{ $ref: getSchemaPath(EventsSourceDto) }, { $ref: getSchemaPath(CsvSourceDto) }],
    description: 'The training data.',
  })
  @IsObject()
  @ValidateNested()
  @Type(() => TrainingSourceDto, {
    keepDiscriminatorProperty: true,
    discriminator: {
      property: 'kind',
      subTypes: [
        { name: 'events', value: EventsSourceDto },
        { name: 'csv', value: CsvSourceDto },
      ],
    },
  })
  source!: EventsSourceDto | CsvSourceDto;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      "A model spec (as for `cli train`); defaults to the parent version's, or production's when no parent is named.",
  })
  @IsOptional()
  @IsObject()
  spec?: ModelSpecInput;

  @ApiPropertyOptional({ minimum: 1, description: 'The version this one retrains; recorded on the new version.' })
  @IsOptional()
  @IsVersionId()
  parentVersionId?: number;

  @ApiPropertyOptional({ type: TrainingOverridesDto, description: "Overrides of the spec's training settings." })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => TrainingOverridesDto)
  overrides?: TrainingOverridesDto;

  @ApiPropertyOptional({
    minimum: 0.05,
    maximum: 0.5,
    example: 0.2,
    description: 'Share of the data, the latest in time, held out for evaluation.',
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.05)
  @Max(0.5)
  holdoutFraction?: number;

  @ApiPropertyOptional({
    example: 'user_id',
    maxLength: 128,
    description:
      'Column grouping the held-out rows for GAUC (AUC within each group, weighted by its rows). Events carry `user_id` ' +
      'and `item_id`; the default is `user_id` for events and none for CSV.',
  })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  @Matches(/^[A-Za-z0-9_.:-]+$/, { message: 'groupBy may contain only letters, digits and _ . : -' })
  groupBy?: string;
}

export function toNewTrainingJob({
  source,
  spec,
  parentVersionId,
  overrides,
  holdoutFraction,
  groupBy,
}: CreateTrainingJobDto): NewTrainingJob {
  return {
    source:
      source.kind === 'events'
        ? { kind: 'events', from: new Date(source.from).toISOString(), to: new Date(source.to).toISOString() }
        : { kind: 'csv', path: source.path },
    spec,
    parentVersionId,
    overrides: overrides && { ...overrides },
    holdoutFraction,
    groupBy,
  };
}
