import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNumber, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

import type { RetrainScheduleState } from '@app/queue';

export class UpdateTrainingScheduleDto {
  @ApiProperty({ example: '0 3 * * *', description: 'Cron in UTC: 5 fields, or 6 with seconds first.' })
  @IsString()
  @MaxLength(200)
  cron!: string;

  @ApiPropertyOptional({
    minimum: 0.01,
    maximum: 365,
    example: 7,
    description: 'Days of events before each run to train on; unchanged when left out.',
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.01)
  @Max(365)
  windowDays?: number;
}

export class TrainingScheduleDto implements RetrainScheduleState {
  @ApiProperty({ example: '0 3 * * *' })
  cron!: string;

  @ApiProperty({ example: 'UTC' })
  timezone!: string;

  @ApiProperty({ example: 7 })
  windowDays!: number;

  @ApiProperty()
  paused!: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Next run; null while paused.' })
  nextRunAt!: string | null;

  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;

  @ApiProperty({
    example: 'admin',
    description: "'config' while the schedule is the one seeded from RETRAIN_* settings.",
  })
  updatedBy!: string;
}

export function mapTrainingSchedule({
  cron,
  timezone,
  windowDays,
  paused,
  nextRunAt,
  updatedAt,
  updatedBy,
}: RetrainScheduleState): TrainingScheduleDto {
  return { cron, timezone, windowDays, paused, nextRunAt, updatedAt, updatedBy };
}
