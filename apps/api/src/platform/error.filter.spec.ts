import { BadRequestException } from '@nestjs/common';

import {
  ConflictError,
  DeadlineExceededError,
  InvalidFieldsError,
  NotFoundError,
  OverloadedError,
  UnavailableError,
} from '@app/common';
import { RedisUnavailableError } from '@app/redis';

import { clientError, storeUnavailable, toHttpException, unavailableStore } from './error.filter';

describe('toHttpException', () => {
  it('answers a missing thing with 404 and its message', () => {
    const http = toHttpException(new NotFoundError('version 9 does not exist'));
    expect(http.getStatus()).toBe(404);
    expect(http.getResponse()).toEqual({ statusCode: 404, error: 'Not Found', message: 'version 9 does not exist' });
  });

  it('answers a refusal with 409 and its reason', () => {
    const http = toHttpException(new ConflictError('the training schedule is already paused'));
    expect(http.getStatus()).toBe(409);
    expect(http.getResponse()).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'the training schedule is already paused',
    });
  });

  it('answers an unavailable service with 503, its details as the body when given', () => {
    const plain = toHttpException(new UnavailableError('no production model is loaded'));
    expect(plain.getStatus()).toBe(503);
    expect(plain.getResponse()).toMatchObject({ message: 'no production model is loaded' });
    const report = { status: 'unavailable', checks: { postgres: 'down' } };
    expect(toHttpException(new UnavailableError('not ready', { details: report })).getResponse()).toEqual(report);
  });

  it('answers invalid fields with 400, the sentences in message and each field in errors', () => {
    const errors = [
      { field: 'cron', message: 'cron must be a cron expression (bad)' },
      { field: 'objectiveWeights.share', message: 'objectiveWeights.share is not a task of the model (click)' },
    ];
    const http = toHttpException(new InvalidFieldsError(errors));
    expect(http.getStatus()).toBe(400);
    expect(http.getResponse()).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: errors.map((e) => e.message),
      errors,
    });
  });

  it('answers the first 100 invalid fields and counts the rest', () => {
    const errors = Array.from({ length: 180_000 }, (_, i) => ({ field: `events.${i}.userId`, message: `bad ${i}` }));
    const response = toHttpException(new InvalidFieldsError(errors)).getResponse() as { errors: unknown[] };
    expect(response).toMatchObject({ omittedErrors: 179_900, message: expect.arrayContaining(['bad 0', 'bad 99']) });
    expect(response.errors).toEqual(errors.slice(0, 100));
  });

  it('answers an overloaded service with 503 and when to retry', () => {
    const http = toHttpException(new OverloadedError('overloaded: busy', 2));
    expect(http.getStatus()).toBe(503);
    expect(http.getResponse()).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'overloaded: busy',
      retryAfterSeconds: 2,
    });
  });

  it('answers work dropped at its deadline with 504', () => {
    const http = toHttpException(new DeadlineExceededError('the deadline passed'));
    expect(http.getStatus()).toBe(504);
    expect(http.getResponse()).toMatchObject({ statusCode: 504, message: 'the deadline passed' });
  });
});

describe('unavailableStore', () => {
  it('tells a store outage from a bad query', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(unavailableStore(refused)).toBe('database');
    expect(unavailableStore({ message: 'x', driverError: { code: '57P01' } })).toBe('database');
    expect(unavailableStore(new Error('Connection terminated unexpectedly'))).toBe('database');
    expect(unavailableStore(new RedisUnavailableError())).toBe('redis');
    expect(unavailableStore(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe('redis');
    expect(unavailableStore(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe('redis');
    expect(unavailableStore({ message: 'syntax error', driverError: { code: '42601' } })).toBeUndefined();
    expect(unavailableStore(new TypeError('x is not a function'))).toBeUndefined();
  });

  it('answers 503 with the store named', () => {
    const http = storeUnavailable('database');
    expect(http.getStatus()).toBe(503);
    expect(http.getResponse()).toMatchObject({ message: 'database unavailable' });
  });
});

describe('clientError', () => {
  it("keeps the status and message of Fastify's and the body parser's 4xx, so that Nest does not log them as errors", () => {
    const tooLarge = Object.assign(new Error('Request body is too large'), { statusCode: 413 });
    expect(clientError(tooLarge)?.getStatus()).toBe(413);
    expect(clientError(tooLarge)?.getResponse()).toEqual({
      statusCode: 413,
      error: 'Payload Too Large',
      message: 'Request body is too large',
    });
    // A bad body is a 400 like any other: its sentence in a list, naming the body.
    const malformed = Object.assign(new Error('body must not use __proto__ or constructor.prototype as keys'), {
      statusCode: 400,
    });
    expect(clientError(malformed)?.getResponse()).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: [malformed.message],
      errors: [{ field: 'body', message: malformed.message }],
    });
  });

  it('leaves alone server errors, plain objects and what is already an HTTP exception', () => {
    expect(clientError(Object.assign(new Error('x'), { statusCode: 500 }))).toBeUndefined();
    expect(clientError(new Error('x'))).toBeUndefined();
    expect(clientError({ statusCode: 400, message: 'x' })).toBeUndefined();
    expect(clientError(new BadRequestException('x'))).toBeUndefined();
  });
});
