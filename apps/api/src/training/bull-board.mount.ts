import { createBullBoard } from '@bull-board/api';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import { FastifyAdapter as BoardAdapter } from '@bull-board/fastify';
import { InjectQueue } from '@nestjs/bull';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Queue } from 'bull';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { TRAINING_QUEUE } from '@app/queue';
import { RedisConnections } from '@app/redis';

import { AdminTokenGuard, bearerToken } from '../admin/admin-token.guard';
import { storeUnavailable } from '../platform/error.filter';

export const QUEUE_BOARD_PATH = '/admin/queues';

const BASIC = /^Basic[ ]+([A-Za-z0-9+/]+=*)\s*$/i;

/**
 * Bull Board at /admin/queues, behind ADMIN_TOKEN. It is a Fastify plugin, out of reach of Nest guards, so an
 * onRequest hook of its own scope makes the guard's check. Besides `Authorization: Bearer <token>` (curl) it takes
 * HTTP Basic with the token as the password: a browser asks for it on the 401 and then sends it with every request
 * the board's page makes, and the token stays out of URLs and access logs (the authorization header is redacted).
 */
@Injectable()
export class BullBoardMount implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @InjectQueue(TRAINING_QUEUE) private readonly queue: Queue,
    private readonly guard: AdminTokenGuard,
    private readonly redis: RedisConnections,
  ) {}

  /** Runs before the server is ready (app.init / listen), when Fastify still accepts plugins. */
  onModuleInit(): void {
    const board = new BoardAdapter().setBasePath(QUEUE_BOARD_PATH);
    createBullBoard({ queues: [new BullAdapter(this.queue)], serverAdapter: board });
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    void fastify.register(
      async (scope) => {
        scope.addHook('onRequest', (request, reply, done) => {
          if (!this.authorized(request)) return challenge(reply);
          // The board is the queue in Redis: without it, a clear 503 rather than a page that hangs.
          if (!this.redis.available())
            return void reply.code(503).header('Retry-After', '1').send(storeUnavailable('redis').getResponse());
          done();
        });
        await scope.register(board.registerPlugin());
      },
      { prefix: QUEUE_BOARD_PATH },
    );
  }

  private authorized(request: FastifyRequest): boolean {
    const authorization = request.headers.authorization;
    return this.guard.accepts(bearerToken(authorization) ?? basicPassword(authorization));
  }
}

function basicPassword(authorization: string | undefined): string | undefined {
  const encoded = BASIC.exec(authorization ?? '')?.[1];
  if (encoded === undefined) return undefined;
  const credentials = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon < 0 ? undefined : credentials.slice(colon + 1);
}

function challenge(reply: FastifyReply): void {
  void reply.code(401).header('WWW-Authenticate', 'Basic realm="admin", charset="UTF-8"').send({
    statusCode: 401,
    error: 'Unauthorized',
    message: 'missing or invalid admin token (Bearer, or Basic with the token as password)',
  });
}
