import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';

import { ModelRegistryService } from '@app/registry';

import { ADMIN_ACTOR, AdminTokenGuard } from '../admin/admin-token.guard';
import { VersionIdParamsDto } from '../admin/dto/model-version.dto';
import { mapTransition, TransitionResultDto } from '../admin/dto/transition.dto';
import {
  CompareLiveQueryDto,
  LiveComparisonDto,
  LiveMetricsDto,
  mapLiveComparison,
  mapLiveMetrics,
  WindowQueryDto,
  windowStart,
} from './dto/live-metrics.dto';
import { RolloutPolicyDto, toRolloutPolicy } from './dto/rollout-policy.dto';
import { ShadowDto } from './dto/shadow.dto';
import { LiveMetricsService } from './live-metrics.service';

/** Live traffic: online metrics per version, shadow versions and the automatic rollout policy. */
@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing or wrong bearer token (ADMIN_TOKEN).' })
@UseGuards(AdminTokenGuard)
@Controller('admin/models')
export class LiveController {
  constructor(
    private readonly live: LiveMetricsService,
    private readonly registry: ModelRegistryService,
  ) {}

  @Get('compare-live')
  @ApiOperation({ summary: "Two versions' online metrics over one window, with DeLong's AUC test per binary task" })
  @ApiOkResponse({ type: LiveComparisonDto })
  @ApiNotFoundResponse()
  async compareLive(@Query() { a, b, window }: CompareLiveQueryDto): Promise<LiveComparisonDto> {
    return mapLiveComparison(await this.live.compare(a, b, windowStart(window)), window);
  }

  @Get(':id/live-metrics')
  @ApiOperation({ summary: "A version's online metrics: logged predictions joined with the events that came back" })
  @ApiOkResponse({ type: LiveMetricsDto })
  @ApiNotFoundResponse()
  async liveMetrics(@Param() { id }: VersionIdParamsDto, @Query() { window }: WindowQueryDto): Promise<LiveMetricsDto> {
    return mapLiveMetrics(await this.live.forVersion(id, windowStart(window)), window);
  }

  @Post(':id/shadow')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Make a candidate the shadow (or change its percent): it scores requests in the background',
  })
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is not a candidate or the shadow.' })
  async shadow(@Param() { id }: VersionIdParamsDto, @Body() { percent }: ShadowDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setShadow(id, percent, ADMIN_ACTOR));
  }

  @Put(':id/rollout-policy')
  @ApiOperation({ summary: 'Set the policy that promotes or rejects the version on its own while it is the canary' })
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is in production, archived or failed.' })
  async setPolicy(@Param() { id }: VersionIdParamsDto, @Body() policy: RolloutPolicyDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setRolloutPolicy(id, toRolloutPolicy(policy), ADMIN_ACTOR));
  }

  @Delete(':id/rollout-policy')
  @ApiOperation({ summary: 'Clear the rollout policy: promotion and rejection are left to a person again' })
  @ApiOkResponse({ type: TransitionResultDto })
  async clearPolicy(@Param() { id }: VersionIdParamsDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setRolloutPolicy(id, null, ADMIN_ACTOR));
  }
}
