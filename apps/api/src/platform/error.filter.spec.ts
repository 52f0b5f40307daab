import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';

import { toHttpException } from './error.filter';

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
});
