import { BadRequestException } from '@nestjs/common';

export interface FieldError {
  /** Dotted path of the failing field, e.g. `itemIds` or `objectiveWeights.click`. */
  field: string;
  /** A sentence naming the field path, e.g. `itemIds must contain at least 1 elements`. */
  message: string;
}

/**
 * The one 400 shape of the API: `message` keeps Nest's list of readable sentences, `errors` pairs each with its
 * field path, for clients that map errors onto inputs.
 */
export function badRequest(errors: FieldError[]): BadRequestException {
  return new BadRequestException({
    statusCode: 400,
    error: 'Bad Request',
    message: errors.map((e) => e.message),
    errors,
  });
}
