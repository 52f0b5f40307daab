import { Body, Controller, Delete, Get, Header, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import { REPORT_CONTENT_SECURITY_POLICY } from '@app/mmoe/report/training-report';
import { ModelRegistryService } from '@app/registry';

import {
  CompareLiveQueryDto,
  LiveComparisonDto,
  LiveMetricsDto,
  mapLiveComparison,
  mapLiveMetrics,
  WindowQueryDto,
  windowStart,
} from '../live/dto/live-metrics.dto';
import { RolloutPolicyDto, toRolloutPolicy } from '../live/dto/rollout-policy.dto';
import { ShadowDto } from '../live/dto/shadow.dto';
import { LiveMetricsService } from '../live/live-metrics.service';
import { LargeBody } from '../platform/body-limit';
import { AdminApi } from './admin-api.decorator';
import { ADMIN_ACTOR } from './admin-token.guard';
import { CompareQueryDto, mapComparison, VersionComparisonDto } from './dto/compare.dto';
import {
  mapModelVersion,
  mapModelVersionDetail,
  ModelVersionDetailDto,
  ModelVersionDto,
  VersionIdParamsDto,
} from './dto/model-version.dto';
import { RegisterModelDto } from './dto/register-model.dto';
import { CanaryDto, mapTransition, PrecisionDto, PromoteDto, TransitionResultDto } from './dto/transition.dto';

/**
 * The model versions: registration, reads and reports, the rollout transitions (shadow, canary, promote, rollback,
 * precision, archive), the automatic rollout policy and the online metrics. The rules live in the registry and the
 * live-metrics service; this maps HTTP onto them.
 */
@AdminApi()
@Controller('admin/models')
export class ModelsController {
  constructor(
    private readonly registry: ModelRegistryService,
    private readonly live: LiveMetricsService,
  ) {}

  @Get()
  @ApiOkResponse({ type: [ModelVersionDto], description: 'Every version, newest first.' })
  async list(): Promise<ModelVersionDto[]> {
    return (await this.registry.list()).map(mapModelVersion);
  }

  @Get('compare')
  @ApiOkResponse({ type: VersionComparisonDto })
  @ApiNotFoundResponse()
  async compare(@Query() { a, b }: CompareQueryDto): Promise<VersionComparisonDto> {
    return mapComparison(await this.registry.compare(a, b));
  }

  @Get('compare-live')
  @ApiOperation({ summary: "Two versions' online metrics over one window, with DeLong's AUC test per binary task" })
  @ApiOkResponse({ type: LiveComparisonDto })
  @ApiNotFoundResponse()
  async compareLive(@Query() { a, b, window }: CompareLiveQueryDto): Promise<LiveComparisonDto> {
    return mapLiveComparison(await this.live.compare(a, b, windowStart(window)), window);
  }

  @Get(':id')
  @ApiOkResponse({ type: ModelVersionDetailDto })
  @ApiNotFoundResponse()
  async get(@Param() { id }: VersionIdParamsDto): Promise<ModelVersionDetailDto> {
    return mapModelVersionDetail(await this.registry.get(id));
  }

  @Post()
  @LargeBody()
  @ApiCreatedResponse({ type: ModelVersionDto, description: 'Registered as a candidate, with its ONNX export.' })
  async register(@Body() { artifact, ...rest }: RegisterModelDto): Promise<ModelVersionDto> {
    return mapModelVersion(
      await this.registry.register({ artifact: Buffer.from(artifact, 'base64'), ...rest }, ADMIN_ACTOR),
    );
  }

  @Get(':id/report')
  @Header('content-security-policy', REPORT_CONTENT_SECURITY_POLICY)
  @ApiProduces('text/html')
  @ApiOkResponse({
    description:
      'The training report of a worker-trained version: loss and metrics per epoch, gate utilisation, calibration ' +
      'curves, spec, sizes, throughput and the comparison with production on the held-out slice (one HTML file).',
    schema: { type: 'string' },
  })
  @ApiNotFoundResponse({ description: 'No such version, or one uploaded rather than trained by a worker.' })
  async report(@Param() { id }: VersionIdParamsDto, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const html = await this.registry.trainingReport(id);
    // Set here, not by @Header: a 404's JSON body under an HTML content type made Fastify warn on every miss.
    reply.type('text/html; charset=utf-8');
    return html;
  }

  @Get(':id/live-metrics')
  @ApiOperation({ summary: "A version's online metrics: logged predictions joined with the events that came back" })
  @ApiOkResponse({ type: LiveMetricsDto })
  @ApiNotFoundResponse()
  async liveMetrics(@Param() { id }: VersionIdParamsDto, @Query() { window }: WindowQueryDto): Promise<LiveMetricsDto> {
    return mapLiveMetrics(await this.live.forVersion(id, windowStart(window)), window);
  }

  @Post('promote')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'There is no canary, or versionId is not the canary.' })
  async promote(@Body() { versionId, objectiveWeights, fusion }: PromoteDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.promote(versionId, { objectiveWeights, fusion }, ADMIN_ACTOR));
  }

  @Post('rollback')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'No production version, or none before it.' })
  async rollback(): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.rollback(ADMIN_ACTOR));
  }

  @Post(':id/shadow')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Make a candidate the shadow (or change its percent): it scores requests in the background',
  })
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is not a candidate or the shadow, or the shadow at that percent.' })
  async shadow(@Param() { id }: VersionIdParamsDto, @Body() { percent }: ShadowDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setShadow(id, percent, ADMIN_ACTOR));
  }

  @Delete(':id/shadow')
  @ApiOperation({ summary: 'Stop the shadow: it scores no more requests and is a candidate again' })
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is not the shadow.' })
  @ApiNotFoundResponse()
  async endShadow(@Param() { id }: VersionIdParamsDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.endShadow(id, ADMIN_ACTOR));
  }

  @Post(':id/canary')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({
    description:
      'The version is not a candidate, the shadow or the canary, or it is the canary at that percent already.',
  })
  @ApiNotFoundResponse()
  async canary(
    @Param() { id }: VersionIdParamsDto,
    @Body() { percent, objectiveWeights, fusion }: CanaryDto,
  ): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setCanary(id, percent, { objectiveWeights, fusion }, ADMIN_ACTOR));
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
  @ApiConflictResponse({ description: 'The version has no rollout policy.' })
  async clearPolicy(@Param() { id }: VersionIdParamsDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setRolloutPolicy(id, null, ADMIN_ACTOR));
  }

  @Post(':id/precision')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto, description: 'Every API process rebuilds the serving graph.' })
  @ApiConflictResponse({
    description: 'int8 without a passed holdout check, the precision it already has, or an archived/failed version.',
  })
  @ApiNotFoundResponse()
  async precision(
    @Param() { id }: VersionIdParamsDto,
    @Body() { precision }: PrecisionDto,
  ): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setServingPrecision(id, precision, ADMIN_ACTOR));
  }

  @Post(':id/archive')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is in production or already archived.' })
  @ApiNotFoundResponse()
  async archive(@Param() { id }: VersionIdParamsDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.archive(id, ADMIN_ACTOR));
  }
}
