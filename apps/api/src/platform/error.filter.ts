import { STATUS_CODES } from 'node:http';
import {
  BadRequestException,
  Catch,
  ConflictException,
  GatewayTimeoutException,
  HttpException,
  NotFoundException,
  ServiceUnavailableException,
  type ArgumentsHost,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { FastifyReply } from 'fastify';

import {
  ConflictError,
  DeadlineExceededError,
  DomainError,
  InvalidFieldsError,
  NotFoundError,
  UnavailableError,
} from '@app/common';
import { isDatabaseUnavailable } from '@app/db';
import { isRedisUnavailable } from '@app/redis';

/** Seconds a client is told to wait before retrying during an outage: stores restart in seconds. */
const RETRY_AFTER_SECONDS = 1;

/**
 * The one place where errors become HTTP statuses: the libraries and services throw domain errors, and this filter
 * answers them as Nest's own exceptions would (same bodies); a store that cannot be reached is a 503 with
 * Retry-After, not a 500; a client error from Fastify or the body parser keeps its status; everything else is left to
 * Nest's default handling (a 500, logged as an error).
 */
@Catch()
export class ErrorFilter extends BaseExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost): void {
    const unavailable = unavailableStore(error);
    const retryAfter = unavailable
      ? RETRY_AFTER_SECONDS
      : error instanceof UnavailableError
        ? error.options.retryAfterSeconds
        : undefined;
    if (retryAfter !== undefined)
      host.switchToHttp().getResponse<FastifyReply>().header('Retry-After', String(retryAfter));
    super.catch(
      unavailable
        ? storeUnavailable(unavailable)
        : error instanceof DomainError
          ? toHttpException(error)
          : (clientError(error) ?? error),
      host,
    );
  }
}

/**
 * A 4xx raised before any handler (Fastify's 413 and 415, the body parser's 400 and 415) as the HttpException of its
 * status: Nest would answer it with the same status but log it as an error with its stack, as if the server had
 * failed. The request line (info) is all that a client's mistake is worth in the logs. Some reach the filter already
 * wrapped by Nest (RoutesResolver.mapExternalException: an HttpException whose whole response is Fastify's message,
 * malformed JSON among them) and get the same body.
 */
export function clientError(error: unknown): HttpException | undefined {
  const raised =
    error instanceof HttpException
      ? typeof error.getResponse() === 'string' && { status: error.getStatus(), message: error.message }
      : error instanceof Error && { status: (error as { statusCode?: unknown }).statusCode, message: error.message };
  if (!raised) return undefined;
  const { status, message } = raised;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  // A bad body (malformed JSON, not UTF-8, too deep …) reads like any other 400: its sentence, naming the body.
  const body = status === 400 ? { message: [message], errors: [{ field: 'body', message }] } : undefined;
  return new HttpException({ statusCode: status, error: STATUS_CODES[status], message, ...body }, status);
}

export function unavailableStore(error: unknown): 'database' | 'redis' | undefined {
  if (isDatabaseUnavailable(error)) return 'database';
  if (isRedisUnavailable(error)) return 'redis';
  return undefined;
}

export function storeUnavailable(store: 'database' | 'redis'): HttpException {
  return serviceUnavailable(`${store} unavailable`, RETRY_AFTER_SECONDS);
}

/** A 503's body: the message, and when to retry when there is a time (the Retry-After header says it too). */
function serviceUnavailable(message: string, retryAfterSeconds?: number): HttpException {
  return new ServiceUnavailableException({
    statusCode: 503,
    error: 'Service Unavailable',
    message,
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
  });
}

export function toHttpException(error: DomainError): HttpException {
  if (error instanceof NotFoundError) return new NotFoundException(error.message);
  if (error instanceof ConflictError) return new ConflictException(error.message);
  if (error instanceof UnavailableError) {
    const { details, retryAfterSeconds } = error.options;
    return details ? new ServiceUnavailableException(details) : serviceUnavailable(error.message, retryAfterSeconds);
  }
  if (error instanceof DeadlineExceededError) return new GatewayTimeoutException(error.message);
  if (error instanceof InvalidFieldsError) {
    // `message` keeps Nest's list of readable sentences, `errors` pairs each with its field, for clients that map
    // errors onto inputs.
    return new BadRequestException({
      statusCode: 400,
      error: 'Bad Request',
      message: error.errors.map((e) => e.message),
      errors: error.errors,
      ...(error.omitted > 0 && { omittedErrors: error.omitted }),
    });
  }
  // A domain error with no status of its own is still the caller's input that cannot succeed, never a 5xx.
  return new BadRequestException(error.message);
}
