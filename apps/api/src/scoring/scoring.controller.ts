import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';

import { RequestId } from '../platform/request-id';
import { ScoreRequestDto, ScoreResponseDto } from './dto/score.dto';
import { ScoringService } from './scoring.service';

@ApiTags('scoring')
@Controller('v1')
export class ScoringController {
  constructor(private readonly scoring: ScoringService) {}

  @Post('score')
  @HttpCode(200)
  @ApiOperation({ summary: "Score and rank a user's candidates on every objective" })
  @ApiOkResponse({ type: ScoreResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid body; `errors` names each failing field' })
  @ApiServiceUnavailableResponse({ description: 'No production model is loaded' })
  score(@Body() body: ScoreRequestDto, @RequestId() requestId: string): Promise<ScoreResponseDto> {
    return this.scoring.score(body, requestId);
  }
}
