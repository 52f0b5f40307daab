import type { NestApplicationOptions } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply } from 'fastify';

/**
 * Entity ids of up to 256 characters travel in paths (`/v1/users/:id/features`), longer once percent-encoded; the
 * router's default cap of 100 would answer 414 before validation could name the field. The DTOs bound the length.
 */
const MAX_PARAM_LENGTH = 4096;

/**
 * How often Node looks for connections past HTTP_REQUEST_TIMEOUT_MS / HTTP_HEADERS_TIMEOUT_MS (http-hooks.ts sets
 * those). Node's default of 30 s would let a slow client hold a socket three times the 10 s header timeout; a scan of
 * the open connections once a second costs next to nothing.
 */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

/** The adapter of main.ts and of the e2e tests: options Fastify only takes at construction. */
export function createFastifyAdapter(): FastifyAdapter {
  return new FastifyAdapter({
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    http: { connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS },
    // A path that is not valid percent-encoded UTF-8 fails in the router, before any route: Fastify's own 400 named
    // no field. Answered as the validation pipe answers a bad path parameter.
    frameworkErrors: (error: FastifyError, _request: unknown, reply: FastifyReply) => {
      if (error.code !== 'FST_ERR_BAD_URL') return reply.send(error);
      const message = 'path must be valid percent-encoded UTF-8';
      return reply
        .code(400)
        .send({ statusCode: 400, error: 'Bad Request', message: [message], errors: [{ field: 'path', message }] });
    },
  });
}

/** Options of the Nest app in main.ts and the e2e tests: json-body.parser.ts is the only body parser, not Nest's. */
export const APP_OPTIONS: NestApplicationOptions = { bodyParser: false };
