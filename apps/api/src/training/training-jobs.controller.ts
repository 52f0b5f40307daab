import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiConflictResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse } from '@nestjs/swagger';

import { TRAINING_QUEUE } from '@app/queue';

import { AdminApi } from '../admin/admin-api.decorator';
import { ADMIN_ACTOR } from '../admin/admin-token.guard';
import { RequiresRedis } from '../platform/redis-available.guard';
import { CreateTrainingJobDto, toNewTrainingJob } from './dto/create-training-job.dto';
import {
  mapTrainingJob,
  mapTrainingJobCreated,
  TrainingJobCancelledDto,
  TrainingJobCreatedDto,
  TrainingJobDto,
  TrainingJobIdParamsDto,
  TrainingJobListQueryDto,
} from './dto/training-job.dto';
import { TrainingJobsService } from './training-jobs.service';

@AdminApi()
@RequiresRedis(TRAINING_QUEUE)
@Controller('admin/training-jobs')
export class TrainingJobsController {
  constructor(private readonly jobs: TrainingJobsService) {}

  @Post()
  @ApiCreatedResponse({
    type: TrainingJobCreatedDto,
    description: 'Queued; follow it at GET /admin/training-jobs/:id.',
  })
  async create(@Body() body: CreateTrainingJobDto): Promise<TrainingJobCreatedDto> {
    return mapTrainingJobCreated(await this.jobs.create(toNewTrainingJob(body), ADMIN_ACTOR));
  }

  @Get()
  @ApiOkResponse({
    type: [TrainingJobDto],
    description: 'The most recent jobs of every state (scheduled runs included), newest first.',
  })
  async list(@Query() { limit }: TrainingJobListQueryDto): Promise<TrainingJobDto[]> {
    return (await this.jobs.list(limit)).map(mapTrainingJob);
  }

  @Get(':id')
  @ApiOkResponse({ type: TrainingJobDto })
  @ApiNotFoundResponse()
  async get(@Param() { id }: TrainingJobIdParamsDto): Promise<TrainingJobDto> {
    return mapTrainingJob(await this.jobs.get(id));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingJobCancelledDto })
  @ApiConflictResponse({
    description: 'The job has already completed or failed, or is a run of the schedule (pause that instead).',
  })
  @ApiNotFoundResponse()
  cancel(@Param() { id }: TrainingJobIdParamsDto): Promise<TrainingJobCancelledDto> {
    return this.jobs.cancel(id);
  }
}
