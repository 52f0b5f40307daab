import type { LogLevel } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { Level } from 'pino';

import type { AppConfig } from '@app/config';

/** LOG_LEVEL keeps Nest's names (the worker and CLI use them); pino spells them its own way. */
const PINO_LEVELS: Record<LogLevel, Level> = {
  verbose: 'trace',
  debug: 'debug',
  log: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
};

/** JSON logs; every line logged while serving a request carries its id (Fastify's request.id, see request-id.ts). */
export function loggerParams(config: AppConfig): Params {
  return {
    pinoHttp: {
      level: PINO_LEVELS[config.LOG_LEVEL],
      // pino-http's default id is `req.id`, which Fastify's middleware bridge copies from request.id.
      quietReqLogger: true,
      customAttributeKeys: { reqId: 'requestId' },
      redact: ['req.headers.authorization'],
    },
  };
}
