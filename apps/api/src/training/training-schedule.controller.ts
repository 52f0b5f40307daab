import { Body, Controller, Get, HttpCode, Post, Put } from '@nestjs/common';
import { ApiConflictResponse, ApiOkResponse } from '@nestjs/swagger';

import { TRAINING_QUEUE, TrainingScheduleService } from '@app/queue';
import { checkRolloutPolicyField, ModelRegistryService, parsedSpecOf, type RolloutPolicy } from '@app/registry';

import { AdminApi } from '../admin/admin-api.decorator';
import { ADMIN_ACTOR } from '../admin/admin-token.guard';
import { RequiresRedis } from '../platform/redis-available.guard';
import {
  mapTrainingSchedule,
  policyChange,
  TrainingScheduleDto,
  UpdateIncrementalScheduleDto,
  UpdateTrainingScheduleDto,
} from './dto/training-schedule.dto';

/** The two retraining cadences: the full retrain at the top level, the incremental warm start under /incremental. */
@AdminApi()
@RequiresRedis(TRAINING_QUEUE)
@Controller('admin/training-schedule')
export class TrainingScheduleController {
  constructor(
    private readonly schedule: TrainingScheduleService,
    private readonly registry: ModelRegistryService,
  ) {}

  @Get()
  @ApiOkResponse({ type: TrainingScheduleDto, description: "The cluster's retraining cadences." })
  async get(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.get());
  }

  @Put()
  @ApiOkResponse({
    type: TrainingScheduleDto,
    description: 'The full retrain; applied at once on every process (the schedule is stored in Postgres).',
  })
  async set(
    @Body() { cron, windowDays, warmStart, epochs, rolloutPolicy }: UpdateTrainingScheduleDto,
  ): Promise<TrainingScheduleDto> {
    const change = { cron, windowDays, warmStart, epochs, rolloutPolicy: policyChange(rolloutPolicy) };
    await this.checkPolicy(change.rolloutPolicy);
    return mapTrainingSchedule(await this.schedule.set('full', change, ADMIN_ACTOR));
  }

  @Post('pause')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingScheduleDto })
  @ApiConflictResponse({ description: 'Already paused.' })
  async pause(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.pause(ADMIN_ACTOR, 'full'));
  }

  @Post('resume')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingScheduleDto })
  @ApiConflictResponse({ description: 'Not paused.' })
  async resume(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.resume(ADMIN_ACTOR, 'full'));
  }

  @Put('incremental')
  @ApiOkResponse({ type: TrainingScheduleDto, description: 'The incremental warm start; applied at once everywhere.' })
  async setIncremental(
    @Body() { cron, replay, epochs, rolloutPolicy }: UpdateIncrementalScheduleDto,
  ): Promise<TrainingScheduleDto> {
    const change = { cron, replay, epochs, rolloutPolicy: policyChange(rolloutPolicy) };
    await this.checkPolicy(change.rolloutPolicy);
    return mapTrainingSchedule(await this.schedule.set('incremental', change, ADMIN_ACTOR));
  }

  @Post('incremental/pause')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingScheduleDto })
  @ApiConflictResponse({ description: 'Already paused.' })
  async pauseIncremental(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.pause(ADMIN_ACTOR, 'incremental'));
  }

  @Post('incremental/resume')
  @HttpCode(200)
  @ApiOkResponse({ type: TrainingScheduleDto })
  @ApiConflictResponse({ description: 'Not paused.' })
  async resumeIncremental(): Promise<TrainingScheduleDto> {
    return mapTrainingSchedule(await this.schedule.resume(ADMIN_ACTOR, 'incremental'));
  }

  /**
   * A cadence's policy against production's spec, which its runs train (a 400 naming `rolloutPolicy.tasks.<name>`):
   * otherwise a run would canary its version, then find the policy refused. With no production (or one whose stored
   * spec no longer parses) only what needs no spec is checked.
   */
  private async checkPolicy(policy: RolloutPolicy | null | undefined): Promise<void> {
    if (!policy) return;
    const { production } = await this.registry.findServing();
    checkRolloutPolicyField(production && parsedSpecOf(production), policy);
  }
}
