import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';

import { ModelRegistryService } from '@app/registry';

import { AdminApi } from './admin-api.decorator';
import { mapRolloutPage, RolloutPageDto, RolloutQueryDto } from './dto/rollout-event.dto';

/** The rollout history: every transition of every version, by whom, with the evidence of automatic ones. */
@AdminApi()
@Controller('admin/rollouts')
export class RolloutsController {
  constructor(private readonly registry: ModelRegistryService) {}

  @Get()
  @ApiOkResponse({ type: RolloutPageDto })
  async list(@Query() query: RolloutQueryDto): Promise<RolloutPageDto> {
    return mapRolloutPage(await this.registry.history(query.limit, query.offset), query);
  }
}
