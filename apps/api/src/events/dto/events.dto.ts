import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ValidateBy } from 'class-validator';

import { MIN_SAMPLE_WEIGHT } from '@app/mmoe/serving';

import {
  IsEntityId,
  IsNotFuture,
  IsTimestamp,
  IsVersionId,
  MAX_ID_LENGTH,
} from '../../platform/postgres-text.validator';
import { IsFlatRecord, IsNumberIn, IsOmittable, IsRequestContext, ListOf } from '../../platform/validation';

export const MAX_EVENTS = 10_000;
/** Largest event weight: a batch's summed weights stay far inside float32 in training. */
export const MAX_EVENT_WEIGHT = 1e6;

export class EventDto {
  @ApiProperty({
    description: 'Client-chosen id; an event posted again is stored once.',
    minLength: 1,
    maxLength: MAX_ID_LENGTH,
    example: 'e-9f2c',
  })
  @IsEntityId()
  eventId!: string;

  @ApiProperty({ minLength: 1, maxLength: MAX_ID_LENGTH, example: 'u-42' })
  @IsEntityId()
  userId!: string;

  @ApiProperty({ minLength: 1, maxLength: MAX_ID_LENGTH, example: 'i-7' })
  @IsEntityId()
  itemId!: string;

  @ApiProperty({
    description:
      'Outcome per task name of the production model: 0 or 1 for binary tasks, a finite number for regression ones. Tasks may be left out.',
    type: 'object',
    additionalProperties: { type: 'number' },
    example: { click: 1, dwell: 12.5 },
  })
  @IsFlatRecord(['number'])
  labels!: Record<string, number>;

  @ApiPropertyOptional({
    description: 'The requestId of the score call that showed the item.',
    minLength: 1,
    maxLength: MAX_ID_LENGTH,
  })
  @IsOmittable()
  @IsEntityId()
  requestId?: string;

  @ApiPropertyOptional({ description: 'The modelVersion of the score call that showed the item.', example: 7 })
  @IsOmittable()
  @IsVersionId()
  modelVersion?: number;

  @IsRequestContext('Request-time features at the impression (as in the score call).')
  context?: Record<string, string | number | boolean | string[]>;

  @IsNumberIn(
    { min: 0, max: MAX_EVENT_WEIGHT },
    {
      description:
        "Sample weight in event-sourced training (the spec's training.sampleWeight); 1 when left out, 0 leaves the event out of the loss.",
      example: 2.5,
    },
  )
  @ValidateBy({
    name: 'isSampleWeight',
    validator: {
      // Below it a float32 in training holds 0: the event would be left out of the loss without a word.
      validate: (weight: unknown) => typeof weight !== 'number' || !(weight > 0 && weight < MIN_SAMPLE_WEIGHT),
      defaultMessage: () => `weight must be 0 or at least ${MIN_SAMPLE_WEIGHT}`,
    },
  })
  weight?: number;

  @ApiPropertyOptional({
    description:
      'ISO 8601 time of the impression, not later than now (5 minutes of clock skew allowed); now by default.',
    example: '2025-11-22T10:15:00Z',
  })
  @IsOmittable()
  @IsTimestamp()
  @IsNotFuture()
  occurredAt?: string;
}

export class PostEventsDto {
  @ApiProperty({ type: [EventDto], minItems: 1, maxItems: MAX_EVENTS })
  @ListOf(() => EventDto, MAX_EVENTS)
  events!: EventDto[];
}

export class EventsReceivedDto {
  @ApiProperty({ description: 'Events in the request.', example: 2 })
  received!: number;

  @ApiProperty({ description: 'Events stored by this call.', example: 1 })
  stored!: number;

  @ApiProperty({
    description: 'Events whose id was already stored (or repeated in the request), left as they were.',
    example: 1,
  })
  duplicates!: number;
}
