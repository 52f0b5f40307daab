import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import { RequestId } from '../platform/request-id';
import { serializeScoreResponse } from './dto/score-response.serializer';
import { ScoreRequestDto, ScoreResponseDto } from './dto/score.dto';
import { ScoringMetrics } from './scoring.metrics';
import { ScoringService } from './scoring.service';

@ApiTags('scoring')
@Controller('v1')
export class ScoringController {
  constructor(
    private readonly scoring: ScoringService,
    private readonly metrics: ScoringMetrics,
  ) {}

  @Post('score')
  @HttpCode(200)
  @ApiOperation({ summary: "Score and rank a user's candidates on every objective" })
  @ApiOkResponse({ type: ScoreResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid body; `errors` names each failing field' })
  @ApiServiceUnavailableResponse({ description: 'No production model is loaded' })
  async score(
    @Body() body: ScoreRequestDto,
    @RequestId() requestId: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string> {
    const response = await this.scoring.score(body, requestId);
    const started = performance.now();
    const json = serializeScoreResponse(response);
    this.metrics.observeStage('serialisation', performance.now() - started);
    reply.type('application/json; charset=utf-8');
    return json;
  }
}
