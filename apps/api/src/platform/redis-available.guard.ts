import { applyDecorators, Injectable, UseGuards, type CanActivate } from '@nestjs/common';
import { ApiServiceUnavailableResponse } from '@nestjs/swagger';

import { RedisConnections, RedisUnavailableError } from '@app/redis';

/**
 * For routes that cannot work without Redis (the training queue, the schedule): a 503 at once while Redis is down,
 * instead of a request that waits on Bull's retries.
 */
@Injectable()
export class RedisAvailableGuard implements CanActivate {
  constructor(private readonly connections: RedisConnections) {}

  canActivate(): boolean {
    if (!this.connections.available()) throw new RedisUnavailableError();
    return true;
  }
}

/** A controller whose routes need Redis: 503 `redis unavailable` while it is down. */
export const RequiresRedis = (): ClassDecorator =>
  applyDecorators(
    UseGuards(RedisAvailableGuard),
    ApiServiceUnavailableResponse({ description: 'Redis is unavailable (the queue and the schedule live there).' }),
  );
