import { getQueueToken } from '@nestjs/bull';
import {
  applyDecorators,
  Injectable,
  SetMetadata,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
import { ApiServiceUnavailableResponse } from '@nestjs/swagger';
import type { Queue } from 'bull';
import { throwError, timeout, type Observable } from 'rxjs';

import { RedisConnections, RedisUnavailableError } from '@app/redis';

/** Longest a route that needs Redis may take before it refuses (503) rather than keep the caller waiting. */
const REDIS_ROUTE_DEADLINE_MS = 5_000;

const QUEUES = Symbol('redis-queues');

/**
 * For routes that cannot work without Redis (the training queue, the schedule): a 503 at once while the shared
 * connection or the Bull queues the route uses are not connected (each reconnects on its own: Bull's queue may still
 * be reconnecting after the shared connection is back), instead of a request that waits on them.
 */
@Injectable()
export class RedisAvailableGuard implements CanActivate {
  constructor(
    private readonly connections: RedisConnections,
    private readonly reflector: Reflector,
    private readonly moduleRef: ModuleRef,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const queues = this.reflector.get<string[] | undefined>(QUEUES, context.getClass()) ?? [];
    const queuesReady = queues.every(
      (name) => this.moduleRef.get<Queue>(getQueueToken(name), { strict: false }).client.status === 'ready',
    );
    if (!this.connections.available() || !queuesReady) throw new RedisUnavailableError();
    return true;
  }
}

/** A connected Redis may still not answer (frozen, overloaded): the route refuses after REDIS_ROUTE_DEADLINE_MS. */
@Injectable()
export class RedisDeadlineInterceptor implements NestInterceptor {
  intercept(_: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      timeout({
        first: REDIS_ROUTE_DEADLINE_MS,
        with: () => throwError(() => new RedisUnavailableError('redis did not answer in time')),
      }),
    );
  }
}

/**
 * A controller whose routes need Redis and the named Bull queues: 503 `redis unavailable` (with Retry-After) while
 * they are down, or when they do not answer within REDIS_ROUTE_DEADLINE_MS.
 */
export const RequiresRedis = (...queues: string[]): ClassDecorator =>
  applyDecorators(
    SetMetadata(QUEUES, queues),
    UseGuards(RedisAvailableGuard),
    UseInterceptors(RedisDeadlineInterceptor),
    ApiServiceUnavailableResponse({
      description: 'Redis is unavailable or does not answer in time (the queue and the schedule live there).',
    }),
  );
