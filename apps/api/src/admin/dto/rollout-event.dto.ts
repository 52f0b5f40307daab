import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

import { ROLLOUT_ACTIONS, type RolloutAction } from '@app/db';
import type { RolloutEvent, RolloutEvidence, RolloutPage } from '@app/registry';

import { ToDecimalInt } from '../../platform/postgres-text.validator';

export class RolloutQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @ToDecimalInt()
  @IsInt()
  @Min(1)
  @Max(500)
  limit: number = 50;

  @ApiPropertyOptional({ minimum: 0, default: 0 })
  @IsOptional()
  @ToDecimalInt()
  @IsInt()
  @Min(0)
  @Max(Number.MAX_SAFE_INTEGER)
  offset: number = 0;
}

export class RolloutEventDto {
  @ApiProperty()
  id!: number;

  @ApiProperty({ enum: ROLLOUT_ACTIONS })
  action!: RolloutAction;

  @ApiProperty({ example: 'admin' })
  actor!: string;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'The version leaving its role: replaced canary, previous production, archived version.',
  })
  fromVersionId!: number | null;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'The version entering it: registered, canary, promoted or restored production.',
  })
  toVersionId!: number | null;

  @ApiProperty({ type: Number, nullable: true, description: 'Canary or shadow percent, for canary and shadow events.' })
  percent!: number | null;

  @ApiProperty({
    type: 'object',
    nullable: true,
    additionalProperties: true,
    description:
      'What an automatic decision (actor `policy`) was based on: verdict, reason, confidence, test, users and per ' +
      'task the counts, AUCs, standard errors, difference and its confidence-sequence bounds, per guardrail its ' +
      'estimate and bounds (decisions recorded before the clustered test keep its p-values); `{policy}` for `policy` ' +
      'events, `{precision}` for `precision` events.',
  })
  evidence!: RolloutEvidence | null;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

export class RolloutPageDto {
  @ApiProperty({ type: [RolloutEventDto], description: 'Newest first.' })
  items!: RolloutEventDto[];

  @ApiProperty()
  total!: number;

  @ApiProperty()
  limit!: number;

  @ApiProperty()
  offset!: number;
}

export function mapRolloutEvent(event: RolloutEvent): RolloutEventDto {
  return { ...event, createdAt: event.createdAt.toISOString() };
}

export function mapRolloutPage(page: RolloutPage, { limit, offset }: RolloutQueryDto): RolloutPageDto {
  return { items: page.items.map(mapRolloutEvent), total: page.total, limit, offset };
}
