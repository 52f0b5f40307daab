import { Controller, Get } from '@nestjs/common';

@Controller('health')
export class HealthController {
  /** Liveness only: it touches neither Postgres nor Redis, so an outage there never gets a healthy process restarted. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
