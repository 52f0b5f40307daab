import { createBullBoard } from '@bull-board/api';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import { FastifyAdapter as BoardAdapter } from '@bull-board/fastify';
import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import type { Queue } from 'bull';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { ConflictError, InvalidFieldsError, type DomainError } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { TRAINING_QUEUE } from '@app/queue';
import { RedisConnections, withRedisDeadline } from '@app/redis';

import { AdminTokenGuard, bearerToken } from '../admin/admin-token.guard';
import { storeUnavailable, toHttpException } from '../platform/error.filter';
import { RATE_LIMIT_WINDOW_MS } from '../platform/platform.module';
import { requestPartError } from '../platform/validation';

export const QUEUE_BOARD_PATH = '/admin/queues';

const BASIC = /^Basic[ ]+([A-Za-z0-9+/]+=*)\s*$/i;
const PING_DEADLINE_MS = 1_000;

/**
 * Bull Board at /admin/queues, behind ADMIN_TOKEN. It is a Fastify plugin, out of reach of Nest guards, so an
 * onRequest hook of its own scope makes the guard's check. Besides `Authorization: Bearer <token>` (curl) it takes
 * HTTP Basic with the token as the password: a browser asks for it on the 401 and then sends it with every request
 * the board's page makes, and the token stays out of URLs and access logs (the authorization header is redacted).
 * The same hook counts each client against RATE_LIMIT_PER_MINUTE in the throttler's storage, as the Nest guard does,
 * and a preValidation hook applies the input rules of every route (requestPartError): Bull Board took a `null` body as
 * a job to add, and text Postgres cannot store into job data.
 */
@Injectable()
export class BullBoardMount implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @InjectQueue(TRAINING_QUEUE) private readonly queue: Queue,
    private readonly guard: AdminTokenGuard,
    private readonly redis: RedisConnections,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectThrottlerStorage() private readonly throttler: ThrottlerStorage,
  ) {}

  /** Runs before the server is ready (app.init / listen), when Fastify still accepts plugins. */
  onModuleInit(): void {
    const board = new BoardAdapter().setBasePath(QUEUE_BOARD_PATH);
    createBullBoard({ queues: [new BullAdapter(this.queue)], serverAdapter: board });
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    void fastify.register(
      async (scope) => {
        scope.addHook('onRequest', async (request, reply) => {
          const retryAfter = await this.throttled(request);
          if (retryAfter > 0) return tooManyRequests(reply, retryAfter);
          if (!this.authorized(request)) return challenge(reply);
          // The board is the queue in Redis: without it, a clear 503 rather than a page that hangs.
          if (!(await this.queueAnswers()))
            return reply.code(503).header('Retry-After', '1').send(storeUnavailable('redis').getResponse());
        });
        scope.addHook('preValidation', async (request, reply) => {
          const error =
            requestPartError(request.params, 'path') ??
            requestPartError(request.query, 'query') ??
            requestPartError(request.body, 'body');
          if (error) return reply.code(400).send(toHttpException(new InvalidFieldsError([error])).getResponse());
          const refused = await boardRequestError(request, this.queue);
          if (refused) {
            const http = toHttpException(refused);
            return reply.code(http.getStatus()).send(http.getResponse());
          }
        });
        await scope.register(board.registerPlugin());
      },
      { prefix: QUEUE_BOARD_PATH },
    );
  }

  /** Seconds until this client may call again, 0 while it is under the limit. */
  private async throttled(request: FastifyRequest): Promise<number> {
    const limit = this.config.RATE_LIMIT_PER_MINUTE;
    const { isBlocked, timeToBlockExpire } = await this.throttler.increment(
      `bull-board:${request.ip}`,
      RATE_LIMIT_WINDOW_MS,
      limit,
      RATE_LIMIT_WINDOW_MS,
      'default',
    );
    return isBlocked ? Math.max(1, timeToBlockExpire) : 0;
  }

  /**
   * Whether the queue's connection is up and answers a PING in time: the board's routes are a Fastify plugin's, out
   * of reach of the deadline Nest routes get, so a Redis that is connected but does not answer is found here.
   */
  private async queueAnswers(): Promise<boolean> {
    if (!this.redis.available() || this.queue.client.status !== 'ready') return false;
    return withRedisDeadline(this.queue.client.ping(), PING_DEADLINE_MS).then(
      () => true,
      () => false,
    );
  }

  private authorized(request: FastifyRequest): boolean {
    const authorization = request.headers.authorization;
    return this.guard.accepts(bearerToken(authorization) ?? basicPassword(authorization));
  }
}

/**
 * The job states Bull cleans, by the board's names: its page asks for `waiting`, which Bull calls `wait` (any other
 * name was passed to Bull, which threw: a 500).
 */
const CLEANABLE_STATES: Record<string, string> = {
  completed: 'completed',
  failed: 'failed',
  delayed: 'delayed',
  active: 'active',
  paused: 'paused',
  waiting: 'wait',
  wait: 'wait',
};

/**
 * Job options the board would add a job with that would run training beside the service's own rules: a repeat (a
 * probe's fired every 1 ms, thousands of jobs) past the schedule's SCHEDULE_MIN_INTERVAL_SECONDS, and attempts or a
 * backoff beyond the queue's (TRAINING_JOB_OPTIONS: a failing job re-run every few ms).
 */
const SCHEDULING_OPTIONS = ['repeat', 'attempts', 'backoff'] as const;

/**
 * What the board would take that the service does not, as the error it is answered with: a state Bull cannot clean,
 * a completed job run again (Bull's retry of one fails half-way: a 500, the job's timestamps already gone; the admin
 * API starts a new job instead), and job options that schedule training (SCHEDULING_OPTIONS).
 */
async function boardRequestError(request: FastifyRequest, queue: Queue): Promise<DomainError | undefined> {
  const route = request.routeOptions.url ?? '';
  const params = request.params as { queueStatus?: string; jobId?: string };
  if (route.endsWith('/clean/:queueStatus')) {
    const status = params.queueStatus ?? '';
    if (!Object.hasOwn(CLEANABLE_STATES, status)) {
      const states = Object.keys(CLEANABLE_STATES).join(', ');
      return new InvalidFieldsError([{ field: 'queueStatus', message: `queueStatus must be one of ${states}` }]);
    }
    params.queueStatus = CLEANABLE_STATES[status]; // what the board's handler passes to Bull
  }
  const rerun = 'a completed training job is not run again: start a new one (POST /admin/training-jobs)';
  if (route.endsWith('/retry/:queueStatus') && params.queueStatus !== 'failed')
    return new InvalidFieldsError([{ field: 'queueStatus', message: `queueStatus must be failed: ${rerun}` }]);
  if (route.endsWith('/:jobId/retry')) {
    // Unreadable here (Redis went away since the onRequest PING): the board's own handler answers.
    const job = await queue.getJob(params.jobId ?? '').catch(() => null);
    if (job && (await job.isCompleted().catch(() => false))) return new ConflictError(rerun);
  }
  const options = (request.body as { options?: unknown } | undefined)?.options;
  if (route.endsWith('/:queueName/add') && typeof options === 'object' && options !== null)
    for (const name of SCHEDULING_OPTIONS)
      if (name in options)
        return new InvalidFieldsError([
          {
            field: `options.${name}`,
            message: `options.${name}: training runs are scheduled through PUT /admin/training-schedule, with the queue's own attempts`,
          },
        ]);
  return undefined;
}

function basicPassword(authorization: string | undefined): string | undefined {
  const encoded = BASIC.exec(authorization ?? '')?.[1];
  if (encoded === undefined) return undefined;
  const credentials = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon < 0 ? undefined : credentials.slice(colon + 1);
}

function tooManyRequests(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  return reply
    .code(429)
    .header('Retry-After', String(retryAfterSeconds))
    .send({ statusCode: 429, error: 'Too Many Requests', message: 'rate limit exceeded (RATE_LIMIT_PER_MINUTE)' });
}

function challenge(reply: FastifyReply): FastifyReply {
  return reply.code(401).header('WWW-Authenticate', 'Basic realm="admin", charset="UTF-8"').send({
    statusCode: 401,
    error: 'Unauthorized',
    message: 'missing or invalid admin token (Bearer, or Basic with the token as password)',
  });
}
