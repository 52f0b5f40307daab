import { AsyncLocalStorage } from 'node:async_hooks';
import { Inject, Injectable, Optional, type LoggerService, type LogLevel } from '@nestjs/common';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';

import { APP_CONFIG, type AppConfig } from '@app/config';

/** LOG_LEVEL keeps Nest's names (the worker and CLI use them); pino spells them its own way. */
const PINO_LEVELS: Record<LogLevel, Level> = {
  verbose: 'trace',
  debug: 'debug',
  log: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
};

/** The id of the request being served, entered by http-hooks.ts: every line logged while serving it carries it. */
export const requestContext = new AsyncLocalStorage<string>();

/**
 * The API's Nest logger: one JSON line per message (pino), with the message's context and the current request's id.
 * A line below LOG_LEVEL costs one level check: nothing is built per request (no child logger, no serialised
 * request) unless a line is written.
 */
@Injectable()
export class JsonLogger implements LoggerService {
  readonly pino: Logger;

  /** `destination`: stdout unless a test gives one. */
  constructor(@Inject(APP_CONFIG) config: AppConfig, @Optional() destination?: DestinationStream) {
    this.pino = pino({ level: PINO_LEVELS[config.LOG_LEVEL] }, destination);
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** A line of fields (requestId, req, res …) at `level`, for the HTTP hooks. */
  fields(level: Level, fields: Record<string, unknown>, message: string): void {
    if (this.pino.isLevelEnabled(level)) this.pino[level](fields, message);
  }

  /** Nest calls `(message, context)`, and `(message, stack, context)` for errors. */
  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const context = params.length > 0 && typeof params[params.length - 1] === 'string' ? params.pop() : undefined;
    const fields: Record<string, unknown> = { context, requestId: requestContext.getStore() };
    if (typeof params[0] === 'string') fields.stack = params[0];
    if (message instanceof Error) this.pino[level]({ ...fields, err: message }, message.message);
    else if (typeof message === 'object' && message !== null) this.pino[level]({ ...fields, ...message });
    else this.pino[level](fields, String(message));
  }
}
