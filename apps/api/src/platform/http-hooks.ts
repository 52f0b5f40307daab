import type { FastifyInstance, FastifyRequest } from 'fastify';

import type { AppConfig } from '@app/config';

import { LARGE_BODY } from './body-limit';
import { requestContext, type JsonLogger } from './json-logger';
import type { MetricsService } from './metrics.service';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id';

/**
 * Fastify-level concerns that must also cover what never reaches a Nest handler (404s, 413s, 429s, Bull Board):
 * server timeouts, request ids, security headers, body limits, request latency and request logs. Called before the
 * app is initialised, so the onRoute hook sees every Nest route, and Bull Board's scope inherits the hooks.
 */
export function installHttpHooks(
  fastify: FastifyInstance,
  config: AppConfig,
  metrics: MetricsService,
  logger: JsonLogger,
): void {
  // Slow-header and slow-body clients, and idle keep-alive sockets, must not hold connections open.
  fastify.server.requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  fastify.server.headersTimeout = config.HTTP_HEADERS_TIMEOUT_MS;
  fastify.server.keepAliveTimeout = config.HTTP_KEEP_ALIVE_TIMEOUT_MS;
  fastify.setGenReqId(requestIdOf);
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    // Every answer is the type it declares: a browser must not sniff a JSON error or a report into something else.
    reply.header('x-content-type-options', 'nosniff');
    requestContext.run(request.id, done);
  });
  fastify.addHook('onRoute', (route) => {
    const large = (route.config as Record<string, unknown> | undefined)?.[LARGE_BODY] === true;
    route.bodyLimit ??= large ? config.ADMIN_BODY_LIMIT_BYTES : config.BODY_LIMIT_BYTES;
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.observeHttp(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    logger.fields('info', requestLine(request, reply.statusCode, reply.elapsedTime), 'request completed');
    done();
  });
  // A client that hangs up is not the server's error: info, no stack.
  fastify.addHook('onRequestAbort', (request, done) => {
    logger.fields('info', requestLine(request), 'request aborted');
    done();
  });
}

function requestLine(request: FastifyRequest, statusCode?: number, ms?: number): Record<string, unknown> {
  return {
    requestId: request.id,
    req: { method: request.method, url: request.url, remoteAddress: request.ip },
    res: statusCode === undefined ? undefined : { statusCode },
    responseTime: ms === undefined ? undefined : Math.round(ms),
  };
}
