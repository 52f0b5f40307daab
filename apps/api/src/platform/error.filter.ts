import {
  BadRequestException,
  Catch,
  ConflictException,
  HttpException,
  NotFoundException,
  type ArgumentsHost,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';

import { ConflictError, DomainError, InvalidFieldsError, NotFoundError } from '@app/common';

/**
 * The one place where errors become HTTP statuses: the libraries and services throw domain errors, and this filter
 * answers them as Nest's own exceptions would (same bodies), leaving everything else to Nest's default handling.
 */
@Catch()
export class ErrorFilter extends BaseExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost): void {
    super.catch(error instanceof DomainError ? toHttpException(error) : error, host);
  }
}

export function toHttpException(error: DomainError): HttpException {
  if (error instanceof NotFoundError) return new NotFoundException(error.message);
  if (error instanceof ConflictError) return new ConflictException(error.message);
  if (error instanceof InvalidFieldsError) {
    // `message` keeps Nest's list of readable sentences, `errors` pairs each with its field, for clients that map
    // errors onto inputs.
    return new BadRequestException({
      statusCode: 400,
      error: 'Bad Request',
      message: error.errors.map((e) => e.message),
      errors: error.errors,
    });
  }
  // A domain error with no status of its own is still the caller's input that cannot succeed, never a 5xx.
  return new BadRequestException(error.message);
}
