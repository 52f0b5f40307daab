import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';

import { ReadinessDto } from './dto/readiness.dto';
import { HealthService } from './health.service';

/** Probes are never rate limited: a throttled probe would take a healthy replica out of service. */
@ApiTags('health')
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** Liveness only: it touches neither Postgres nor Redis, so an outage there never gets a healthy process restarted. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOkResponse({ type: ReadinessDto })
  @ApiServiceUnavailableResponse({
    type: ReadinessDto,
    description: 'A store is down or no production model is loaded',
  })
  ready(): Promise<ReadinessDto> {
    return this.health.ready();
  }
}
