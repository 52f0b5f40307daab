import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';

import { TRAINING_PHASES, type TrainingJobProgress, type TrainingJobResult, type TrainingPhase } from '@app/queue';

import { ToDecimalInt } from '../../platform/postgres-text.validator';
import type { TrainingJobRecord } from '../training-jobs.repository';
import type { CancelOutcome, TrainingJobView } from '../training-jobs.service';

const JOB_STATES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'paused', 'stuck'] as const;
const TASK_METRICS = {
  type: 'object',
  additionalProperties: { type: 'object', additionalProperties: { type: 'number' } },
  example: { click: { auc: 0.74 } },
} as const;

export class TrainingJobIdParamsDto {
  @ApiProperty({ example: '12' })
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  id!: string;
}

export class TrainingJobListQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @ToDecimalInt()
  @IsInt()
  @Min(1)
  @Max(100)
  limit: number = 20;
}

export class TrainingJobCreatedDto {
  @ApiProperty({ example: '8e4a91ee-5c1f-4c55-9d47-6f0b7b6e2a10' })
  id!: string;

  @ApiProperty({ enum: JOB_STATES, example: 'waiting' })
  state!: string;
}

export class TrainingJobCancelledDto implements CancelOutcome {
  @ApiProperty({ example: '12' })
  id!: string;

  @ApiProperty({
    enum: ['removed', 'cancelling'],
    description:
      'removed: it had not started and never will; cancelling: the worker stops it at its next check, registering nothing.',
  })
  state!: 'removed' | 'cancelling';
}

export class TrainingJobProgressDto implements TrainingJobProgress {
  @ApiProperty({ enum: TRAINING_PHASES })
  phase!: TrainingPhase;

  @ApiPropertyOptional()
  epoch?: number;

  @ApiPropertyOptional()
  epochs?: number;

  @ApiPropertyOptional()
  step?: number;

  @ApiPropertyOptional()
  steps?: number;

  @ApiPropertyOptional()
  loss?: number;

  @ApiPropertyOptional()
  examplesPerSec?: number;

  @ApiPropertyOptional()
  etaSeconds?: number;
}

export class TrainingExamplesDto {
  @ApiProperty()
  train!: number;

  @ApiProperty()
  holdout!: number;
}

export class TrainingUnseenComparisonDto {
  @ApiProperty({ format: 'date-time', description: "Production's trainedTo: the rows compared are those from it on." })
  trainedTo!: string;

  @ApiProperty({ description: 'How many held-out rows those are (0: kept as a candidate, uncompared).' })
  rows!: number;

  @ApiProperty({ ...TASK_METRICS, description: "The candidate's metrics on those rows." })
  candidate!: Record<string, Record<string, number>>;

  @ApiProperty({ ...TASK_METRICS, description: "Production's metrics on those rows." })
  production!: Record<string, Record<string, number>>;
}

export class TrainingJobResultDto implements TrainingJobResult {
  @ApiProperty({ example: 7 })
  versionId!: number;

  @ApiProperty({ ...TASK_METRICS, description: "The candidate's metrics on the held-out slice, by task." })
  candidate!: Record<string, Record<string, number>>;

  @ApiPropertyOptional({ ...TASK_METRICS, description: "Production's metrics on the same slice." })
  production?: Record<string, Record<string, number>>;

  @ApiPropertyOptional({
    type: TrainingUnseenComparisonDto,
    description:
      'What the gate compared instead, when production had trained on the earlier held-out rows: both models on the rows it had not.',
  })
  unseen?: TrainingUnseenComparisonDto;

  @ApiProperty({ enum: ['canary', 'candidate'] })
  decision!: 'canary' | 'candidate';

  @ApiProperty()
  reason!: string;

  @ApiProperty({ type: TrainingExamplesDto })
  examples!: TrainingExamplesDto;

  @ApiProperty()
  trainingSeconds!: number;
}

export class TrainingWindowDto {
  @ApiProperty({ format: 'date-time' })
  from!: string;

  @ApiProperty({ format: 'date-time' })
  to!: string;
}

export class TrainingJobSkippedDto {
  @ApiProperty({ example: "source.to: no new events in the incremental window […) since version 3's training data" })
  reason!: string;

  @ApiProperty({ description: 'The version the run would have continued (production when it ran).' })
  parentVersionId!: number;

  @ApiProperty({ type: TrainingWindowDto })
  window!: TrainingWindowDto;
}

export class TrainingJobAttemptsDto {
  @ApiProperty({ description: 'Attempts finished so far (failed ones included).' })
  made!: number;

  @ApiProperty()
  max!: number;
}

export class TrainingJobDto {
  @ApiProperty({ example: '12' })
  id!: string;

  @ApiProperty({ enum: ['train', 'scheduled-retrain', 'scheduled-incremental'] })
  name!: string;

  @ApiProperty({ enum: JOB_STATES })
  state!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'The job payload (TrainingJobPayload, or { windowDays } for a scheduled run).',
  })
  payload!: Record<string, unknown>;

  @ApiProperty({ type: TrainingJobProgressDto, nullable: true })
  progress!: TrainingJobProgressDto | null;

  @ApiProperty({ type: TrainingJobAttemptsDto })
  attempts!: TrainingJobAttemptsDto;

  @ApiProperty({ type: String, nullable: true })
  failedReason!: string | null;

  @ApiProperty({ type: TrainingJobResultDto, nullable: true })
  result!: TrainingJobResultDto | null;

  @ApiProperty({
    type: TrainingJobSkippedDto,
    nullable: true,
    description: 'A scheduled incremental run with no new event: completed, nothing trained (a `skip` rollout event).',
  })
  skipped!: TrainingJobSkippedDto | null;

  @ApiProperty({ description: 'A cancel was asked for while the job ran.' })
  cancelRequested!: boolean;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  startedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;
}

const isoOrNull = (ms: number | null): string | null => (ms ? new Date(ms).toISOString() : null);

export function mapTrainingJob(job: TrainingJobView): TrainingJobDto {
  return {
    id: job.id,
    name: job.name,
    state: job.state,
    payload: job.data,
    progress: job.progress,
    // Bull counts the attempts that failed; the one that completed is an attempt made too.
    attempts: { made: job.attemptsMade + (job.state === 'completed' ? 1 : 0), max: job.maxAttempts },
    failedReason: job.failedReason,
    result: job.result,
    skipped: job.skipped,
    cancelRequested: job.cancelRequested,
    createdAt: new Date(job.createdAt).toISOString(),
    startedAt: isoOrNull(job.startedAt),
    finishedAt: isoOrNull(job.finishedAt),
  };
}

export function mapTrainingJobCreated({ id, state }: TrainingJobRecord): TrainingJobCreatedDto {
  return { id, state };
}
