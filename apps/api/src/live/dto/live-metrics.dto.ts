import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Matches, ValidateBy } from 'class-validator';

import { MODEL_STATUSES, type ModelStatus } from '@app/db';

import { IsVersionId, ToDecimalInt } from '../../platform/postgres-text.validator';
import type { AucTest, LiveComparison, VersionLiveMetrics } from '../live-metrics.service';

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_WINDOW_MS = 31 * UNIT_MS.d;
const WINDOW = /^([1-9]\d{0,4})([mhd])$/;

export class WindowQueryDto {
  @ApiPropertyOptional({
    default: '1h',
    example: '1h',
    description: 'How far back from now: a count of minutes, hours or days (`30m`, `1h`, `7d`), at most 31 days.',
  })
  @IsOptional()
  @Matches(WINDOW, { message: 'window must be a duration like 30m, 1h or 7d' })
  // Refused rather than cut to 31 days: the answer echoes the window asked for.
  @ValidateBy({
    name: 'isKeptWindow',
    validator: {
      validate: (value: unknown) =>
        typeof value !== 'string' || !WINDOW.test(value) || windowMs(value) <= MAX_WINDOW_MS,
      defaultMessage: () => 'window must be at most 31d (44640m, 744h)',
    },
  })
  window: string = '1h';
}

export class CompareLiveQueryDto extends WindowQueryDto {
  @ApiProperty({ minimum: 1, example: 6, description: 'The baseline version (usually production).' })
  @ToDecimalInt()
  @IsVersionId()
  a!: number;

  @ApiProperty({ minimum: 1, example: 7, description: 'The version compared with it (canary or shadow).' })
  @ToDecimalInt()
  @IsVersionId()
  b!: number;
}

/** The start of a window the DTO has checked (at most 31 days). */
export function windowStart(window: string, now = Date.now()): Date {
  return new Date(now - windowMs(window));
}

function windowMs(window: string): number {
  const [, count, unit] = WINDOW.exec(window)!;
  return Number(count) * UNIT_MS[unit as keyof typeof UNIT_MS];
}

const TASK_METRICS_SCHEMA = {
  type: 'object',
  description:
    'Per task. Binary: count, auc (from scores binned on the logit scale), gauc (impression-weighted AUC within each ' +
    'request, the ranking it served, over requests with both labels), gaucGroups (those requests), logloss, ' +
    'meanPrediction, labelRate. Regression: count, rmse, mae, meanPrediction, meanLabel. null = undefined.',
  additionalProperties: { type: 'object', additionalProperties: true },
  example: {
    click: {
      type: 'binary',
      count: 5120,
      auc: 0.74,
      gauc: 0.69,
      gaucGroups: 310,
      logloss: 0.51,
      meanPrediction: 0.22,
      labelRate: 0.21,
    },
  },
} as const;

export class LiveMetricsDto {
  @ApiProperty()
  versionId!: number;

  @ApiProperty({ enum: MODEL_STATUSES })
  status!: ModelStatus;

  @ApiProperty({ example: '1h' })
  window!: string;

  @ApiProperty({
    format: 'date-time',
    description: 'Where the window starts: its start, rounded down to the minute (up to 3 h), hour (3 days) or day.',
  })
  since!: string;

  @ApiProperty({
    description:
      'Logged predictions in the window that an event came back for (by requestId, userId, itemId), for the task labelled most.',
  })
  labelledPredictions!: number;

  @ApiProperty(TASK_METRICS_SCHEMA)
  tasks!: VersionLiveMetrics['tasks'];
}

export class AucTestDto {
  @ApiProperty({ description: 'Paired DeLong when both versions scored the same requests (shadow), else unpaired.' })
  paired!: boolean;

  @ApiProperty({
    description: 'Predictions compared (the newest LIVE_METRICS_MAX_ROWS of each version in the window).',
  })
  count!: number;

  @ApiProperty({ description: 'User buckets holding predictions: the clusters the standard error is taken across.' })
  clusters!: number;

  @ApiProperty({ type: Number, nullable: true, description: 'AUC of b − AUC of a.' })
  difference!: number | null;

  @ApiProperty({ type: Number, nullable: true, description: 'Across users (clustered DeLong, Obuchowski 1997).' })
  standardError!: number | null;

  @ApiProperty({ type: Number, nullable: true, description: 'Two-sided p-value of "no difference".' })
  pValue!: number | null;
}

export class LiveComparisonDto {
  @ApiProperty({ type: LiveMetricsDto })
  a!: LiveMetricsDto;

  @ApiProperty({ type: LiveMetricsDto })
  b!: LiveMetricsDto;

  @ApiProperty({ type: 'object', additionalProperties: { $ref: '#/components/schemas/AucTestDto' } })
  aucTests!: Record<string, AucTestDto>;
}

export function mapLiveMetrics(metrics: VersionLiveMetrics, window: string): LiveMetricsDto {
  return { ...metrics, window, since: metrics.since.toISOString() };
}

export function mapLiveComparison(c: LiveComparison, window: string): LiveComparisonDto {
  return {
    a: mapLiveMetrics(c.a, window),
    b: mapLiveMetrics(c.b, window),
    aucTests: c.aucTests satisfies Record<string, AucTest>,
  };
}
