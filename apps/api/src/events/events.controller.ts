import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';

import { LargeBody } from '../platform/body-limit';
import { EventsReceivedDto, PostEventsDto } from './dto/events.dto';
import { EventsService } from './events.service';

@ApiTags('events')
@Controller('v1')
export class EventsController {
  constructor(private readonly events: EventsService) {}

  @Post('events')
  @HttpCode(200)
  @LargeBody()
  @ApiOperation({
    summary: 'Log up to 10,000 impressions with their labels by task name, for retraining (idempotent by eventId)',
  })
  @ApiOkResponse({ type: EventsReceivedDto })
  @ApiBadRequestResponse({
    description: 'Invalid body or a label that does not fit the production tasks; nothing is stored',
  })
  @ApiConflictResponse({ description: 'No production model to validate the labels against' })
  ingest(@Body() body: PostEventsDto): Promise<EventsReceivedDto> {
    return this.events.ingest(body);
  }
}
