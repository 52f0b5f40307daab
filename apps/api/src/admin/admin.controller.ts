import { Body, Controller, Get, Header, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProduces,
} from '@nestjs/swagger';

import { REPORT_CONTENT_SECURITY_POLICY } from '@app/mmoe/report/training-report';
import { ModelRegistryService } from '@app/registry';

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
import { mapRolloutPage, RolloutPageDto, RolloutQueryDto } from './dto/rollout-event.dto';
import { CanaryDto, mapTransition, PrecisionDto, PromoteDto, TransitionResultDto } from './dto/transition.dto';

@AdminApi()
@Controller('admin')
export class AdminController {
  constructor(private readonly registry: ModelRegistryService) {}

  @Get('models')
  @ApiOkResponse({ type: [ModelVersionDto], description: 'Every version, newest first.' })
  async list(): Promise<ModelVersionDto[]> {
    return (await this.registry.list()).map(mapModelVersion);
  }

  @Get('models/compare')
  @ApiOkResponse({ type: VersionComparisonDto })
  @ApiNotFoundResponse()
  async compare(@Query() { a, b }: CompareQueryDto): Promise<VersionComparisonDto> {
    return mapComparison(await this.registry.compare(a, b));
  }

  @Get('models/:id')
  @ApiOkResponse({ type: ModelVersionDetailDto })
  @ApiNotFoundResponse()
  async get(@Param() { id }: VersionIdParamsDto): Promise<ModelVersionDetailDto> {
    return mapModelVersionDetail(await this.registry.get(id));
  }

  @Post('models')
  @LargeBody()
  @ApiCreatedResponse({ type: ModelVersionDto, description: 'Registered as a candidate, with its ONNX export.' })
  async register(@Body() { artifact, ...rest }: RegisterModelDto): Promise<ModelVersionDto> {
    return mapModelVersion(
      await this.registry.register({ artifact: Buffer.from(artifact, 'base64'), ...rest }, ADMIN_ACTOR),
    );
  }

  @Get('models/:id/report')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('content-security-policy', REPORT_CONTENT_SECURITY_POLICY)
  @ApiProduces('text/html')
  @ApiOkResponse({
    description:
      'The training report of a worker-trained version: loss and metrics per epoch, gate utilisation, calibration ' +
      'curves, spec, sizes, throughput and the comparison with production on the held-out slice (one HTML file).',
    schema: { type: 'string' },
  })
  @ApiNotFoundResponse({ description: 'No such version, or one uploaded rather than trained by a worker.' })
  async report(@Param() { id }: VersionIdParamsDto): Promise<string> {
    return this.registry.trainingReport(id);
  }

  @Post('models/promote')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'There is no canary, or versionId is not the canary.' })
  async promote(@Body() { versionId, objectiveWeights, fusion }: PromoteDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.promote(versionId, { objectiveWeights, fusion }, ADMIN_ACTOR));
  }

  @Post('models/rollback')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'No production version, or none before it.' })
  async rollback(): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.rollback(ADMIN_ACTOR));
  }

  @Post('models/:id/canary')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is not a candidate (or already the canary).' })
  @ApiNotFoundResponse()
  async canary(
    @Param() { id }: VersionIdParamsDto,
    @Body() { percent, objectiveWeights, fusion }: CanaryDto,
  ): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.setCanary(id, percent, { objectiveWeights, fusion }, ADMIN_ACTOR));
  }

  @Post('models/:id/precision')
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

  @Post('models/:id/archive')
  @HttpCode(200)
  @ApiOkResponse({ type: TransitionResultDto })
  @ApiConflictResponse({ description: 'The version is in production or already archived.' })
  @ApiNotFoundResponse()
  async archive(@Param() { id }: VersionIdParamsDto): Promise<TransitionResultDto> {
    return mapTransition(await this.registry.archive(id, ADMIN_ACTOR));
  }

  @Get('rollouts')
  @ApiOkResponse({ type: RolloutPageDto })
  async rollouts(@Query() query: RolloutQueryDto): Promise<RolloutPageDto> {
    return mapRolloutPage(await this.registry.history(query.limit, query.offset), query);
  }
}
