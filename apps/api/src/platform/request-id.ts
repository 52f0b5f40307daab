import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

export const REQUEST_ID_HEADER = 'x-request-id';
/** A caller's id is kept only if it is short and plain, since it goes into every log line and a response header. */
const ACCEPTED_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The caller's `x-request-id` when it is usable, else a fresh UUID; Fastify stores it as `request.id`. */
export function requestIdOf(raw: IncomingMessage): string {
  const given = raw.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID();
}

/** The id of the current request (the one in its logs and its `x-request-id` response header). */
export const RequestId = createParamDecorator(
  (_: unknown, context: ExecutionContext): string => context.switchToHttp().getRequest<FastifyRequest>().id,
);
