import type { FastifyInstance } from 'fastify';

import type { AppConfig } from '@app/config';

import { LARGE_BODY } from './body-limit';
import type { MetricsService } from './metrics.service';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id';

/**
 * Fastify-level concerns that must also cover what never reaches a Nest handler (404s, 413s, 429s): server
 * timeouts, request ids, body limits and request latency. Called before the app is initialised, so the onRoute hook
 * sees every Nest route.
 */
export function installHttpHooks(fastify: FastifyInstance, config: AppConfig, metrics: MetricsService): void {
  // Slow-header and slow-body clients, and idle keep-alive sockets, must not hold connections open.
  fastify.server.requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS;
  fastify.server.headersTimeout = config.HTTP_HEADERS_TIMEOUT_MS;
  fastify.server.keepAliveTimeout = config.HTTP_KEEP_ALIVE_TIMEOUT_MS;
  fastify.setGenReqId(requestIdOf);
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
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
    done();
  });
}
