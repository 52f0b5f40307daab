import { ApiProperty } from '@nestjs/swagger';

import 'class-validator';

import type { VersionComparison } from '@app/registry';

import { IsVersionId, ToDecimalInt } from '../../platform/postgres-text.validator';
import { mapModelVersion, ModelVersionDto } from './model-version.dto';

export class CompareQueryDto {
  @ApiProperty({ minimum: 1, example: 6, description: 'The baseline version.' })
  @ToDecimalInt()
  @IsVersionId()
  a!: number;

  @ApiProperty({ minimum: 1, example: 7, description: 'The version compared with it.' })
  @ToDecimalInt()
  @IsVersionId()
  b!: number;
}

export class MetricComparisonDto {
  @ApiProperty({ example: 'auc' })
  metric!: string;

  @ApiProperty({ type: Number, nullable: true })
  a!: number | null;

  @ApiProperty({ type: Number, nullable: true })
  b!: number | null;

  @ApiProperty({ type: Number, nullable: true, description: 'b − a, when both versions have the metric.' })
  delta!: number | null;
}

export class TaskComparisonDto {
  @ApiProperty({ example: 'click' })
  task!: string;

  @ApiProperty({ type: [MetricComparisonDto] })
  metrics!: MetricComparisonDto[];
}

export class VersionComparisonDto {
  @ApiProperty({ type: ModelVersionDto })
  a!: ModelVersionDto;

  @ApiProperty({ type: ModelVersionDto })
  b!: ModelVersionDto;

  @ApiProperty({ type: [TaskComparisonDto], description: 'Validation metrics side by side, per task.' })
  tasks!: TaskComparisonDto[];
}

export function mapComparison(comparison: VersionComparison): VersionComparisonDto {
  return { a: mapModelVersion(comparison.a), b: mapModelVersion(comparison.b), tasks: comparison.tasks };
}
