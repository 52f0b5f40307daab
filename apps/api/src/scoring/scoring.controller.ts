import { Body, Controller, Headers, HttpCode, Inject, Post, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiExtraModels,
  ApiGatewayTimeoutResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { RequestId } from '../platform/request-id';
import { allowsDegraded, DEADLINE_HEADER, deadlineBudgetMs, DEGRADED_HEADER } from './admission.rules';
import { serializeScoreResponse } from './dto/score-response.serializer';
import { DegradedScoreResponseDto, ScoreRequestDto, ScoreResponseDto } from './dto/score.dto';
import { ScoringMetrics } from './scoring.metrics';
import { ScoringService } from './scoring.service';

@ApiTags('scoring')
@ApiExtraModels(ScoreResponseDto, DegradedScoreResponseDto)
@Controller('v1')
export class ScoringController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly scoring: ScoringService,
    private readonly metrics: ScoringMetrics,
  ) {}

  @Post('score')
  @HttpCode(200)
  @ApiOperation({ summary: "Score and rank a user's candidates on every objective" })
  @ApiHeader({
    name: DEADLINE_HEADER,
    required: false,
    description:
      'Milliseconds the caller gives this request, from its arrival (default SCORE_DEADLINE_MS, at most ' +
      'SCORE_DEADLINE_MAX_MS). A request that cannot be scored by then is refused at once (503) or, if its ' +
      'deadline passes before inference, dropped (504): never computed and thrown away.',
  })
  @ApiHeader({
    name: DEGRADED_HEADER,
    required: false,
    enum: ['true', 'false'],
    description:
      '`true`: when the request cannot be scored in time (overloaded, or its deadline would pass before inference ' +
      'could be done), ' +
      'answer 200 with the candidates in request order and `degraded: true` instead of 503 / 504.',
  })
  @ApiOkResponse({
    description: `The ranked candidates; or, with ${DEGRADED_HEADER}: true, when they could not be scored in time, them in request order`,
    schema: { oneOf: [ScoreResponseDto, DegradedScoreResponseDto].map((dto) => ({ $ref: getSchemaPath(dto) })) },
  })
  @ApiBadRequestResponse({
    description: `Invalid body, ${DEADLINE_HEADER} or ${DEGRADED_HEADER}; \`errors\` names each failing field of the body, else the first bad header`,
  })
  @ApiServiceUnavailableResponse({
    description:
      'No production model is loaded, or overloaded: the work already admitted would make this request miss its ' +
      'deadline. Retry-After says when to try again.',
  })
  @ApiGatewayTimeoutResponse({
    description: 'The deadline passed before inference, or would have before it could be done; nothing was scored.',
  })
  async score(
    @Body() body: ScoreRequestDto,
    @Headers(DEADLINE_HEADER) deadlineHeader: string | undefined,
    @Headers(DEGRADED_HEADER) degradedHeader: string | undefined,
    @RequestId() requestId: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer | string> {
    const budget = deadlineBudgetMs(deadlineHeader, this.config.SCORE_DEADLINE_MS, this.config.SCORE_DEADLINE_MAX_MS);
    // From the request's arrival, as the caller counts it: the time Fastify has spent on it so far is included.
    const deadline = performance.now() - reply.elapsedTime + budget;
    const response = await this.scoring.score(body, requestId, {
      deadline,
      allowDegraded: allowsDegraded(degradedHeader),
      bodyBytes: Number(reply.request.headers['content-length']),
    });
    const started = performance.now();
    // A degraded answer is rare and small: JSON.stringify does.
    const json = 'ranking' in response ? serializeScoreResponse(response) : JSON.stringify(response);
    this.metrics.observeStage('serialisation', performance.now() - started);
    reply.type('application/json; charset=utf-8');
    return json;
  }
}
