/**
 * What the libraries and services say went wrong, in their own words: no HTTP here. The API maps these to status codes
 * in one place (apps/api/src/platform/error.filter.ts); the worker fails a job at once on them instead of retrying,
 * since another attempt would only repeat them.
 */
export abstract class DomainError extends Error {}

/** The named thing does not exist (HTTP 404). */
export class NotFoundError extends DomainError {
  override readonly name = 'NotFoundError';
}

/** The request is well-formed but the current state refuses it; the message gives the reason (HTTP 409). */
export class ConflictError extends DomainError {
  override readonly name = 'ConflictError';
}

export interface FieldError {
  /** Dotted path of the failing field, e.g. `itemIds` or `objectiveWeights.click`. */
  field: string;
  /** A sentence naming the field path, e.g. `itemIds must contain at least 1 elements`. */
  message: string;
}

/** Field errors an InvalidFieldsError keeps: a batch of 10,000 bad events answers with its first ones, not megabytes. */
export const MAX_FIELD_ERRORS = 100;

/** One or more input fields are invalid, each named with its own sentence (HTTP 400). */
export class InvalidFieldsError extends DomainError {
  override readonly name = 'InvalidFieldsError';
  /** The first MAX_FIELD_ERRORS of the errors. */
  readonly errors: FieldError[];
  /** How many more there were, left out. */
  readonly omitted: number;

  constructor(errors: FieldError[]) {
    const kept = errors.slice(0, MAX_FIELD_ERRORS);
    const omitted = errors.length - kept.length;
    super(kept.map((e) => e.message).join('; ') + (omitted > 0 ? `; and ${omitted} more` : ''));
    this.errors = kept;
    this.omitted = omitted;
  }
}

/**
 * The service cannot do this now but may soon (no model loaded yet, a dependency not ready, overloaded): HTTP 503,
 * with `Retry-After` when `retryAfterSeconds` is given. `details` is the body a client reads (e.g. a readiness report).
 */
export class UnavailableError extends DomainError {
  override readonly name: string = 'UnavailableError';

  constructor(
    message: string,
    readonly options: { retryAfterSeconds?: number; details?: object } = {},
  ) {
    super(message);
  }
}

/**
 * Refused at once: the work already admitted would not leave time to answer within the deadline (HTTP 503 with
 * Retry-After). Nothing was done for the request: retrying it later is safe.
 */
export class OverloadedError extends UnavailableError {
  override readonly name = 'OverloadedError';

  constructor(message: string, retryAfterSeconds: number) {
    super(message, { retryAfterSeconds });
  }
}

/** The request's deadline passed before its work could start; the work was dropped, not done (HTTP 504). */
export class DeadlineExceededError extends DomainError {
  override readonly name = 'DeadlineExceededError';
}
