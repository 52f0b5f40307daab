import { Body, Controller, Get, HttpCode, Post, Put } from '@nestjs/common';
import { ApiConflictResponse, ApiOkResponse } from '@nestjs/swagger';

import { TRAINING_QUEUE, TrainingScheduleService } from '@app/queue';

import { AdminApi } from '../admin/admin-api.decorator';
import { ADMIN_ACTOR } from '../admin/admin-token.guard';
import { RequiresRedis } from '../platform/redis-available.guard';
import { mapTrainingSchedule, TrainingScheduleDto, UpdateTrainingScheduleDto } from './dto/training-schedule.dto';

@AdminApi()
@RequiresRedis(TRAINING_QUEUE)
@Controller('admin/training-schedule')
export class TrainingScheduleController {
  constructor(private readonly schedule: TrainingScheduleService) {}

  @Get()
  @ApiOkResponse({ type: TrainingScheduleDto, description: "The cluster's retraining schedule." })
  async get(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.get());
  }

  @Put()
  @ApiOkResponse({
    type: TrainingScheduleDto,
    description: 'Applied at once on every process (the schedule lives in Redis).',
  })
  async set(@Body() { cron, windowDays }: UpdateTrainingScheduleDto): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.set(cron, windowDays, ADMIN_ACTOR));
  }

  @Post('pause')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingScheduleDto })
  @ApiConflictResponse({ description: 'Already paused.' })
  async pause(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.pause(ADMIN_ACTOR));
  }

  @Post('resume')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingScheduleDto })
  @ApiConflictResponse({ description: 'Not paused.' })
  async resume(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.resume(ADMIN_ACTOR));
  }
}
