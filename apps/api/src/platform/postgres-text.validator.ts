import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import {
  IsInt,
  IsISO8601,
  IsString,
  Length,
  Max,
  Min,
  ValidateBy,
  type ValidationArguments,
  type ValidationOptions,
} from 'class-validator';

import type { FieldError } from '@app/common';

export const MAX_ID_LENGTH = 256;

// Values that Postgres would reject (text it cannot store, out-of-range ints, unreadable timestamps) are rejected here
// as bad input rather than failing the query with a 500.

/**
 * A UTF-16 surrogate without its pair. Node encodes it as U+FFFD in UTF-8 text (silently changing an id), and
 * JSON.stringify writes it as a `\ud800` escape that jsonb refuses.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The one text rule of every string bound for Postgres (text or jsonb, values and object keys alike): why it cannot
 * be stored as given, as the end of a sentence that starts with the field's name, or undefined when it can.
 */
export function postgresTextProblem(text: string): string | undefined {
  if (text.includes('\0')) return 'must not contain NUL characters';
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates';
  return undefined;
}

/** The postgres-text problem of a string, or of the first key or string value of a flat object that has one. */
export function textProblemIn(value: unknown): string | undefined {
  if (typeof value === 'string') return postgresTextProblem(value);
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, v] of Object.entries(value)) {
    const problem = postgresTextProblem(key) ?? textProblemIn(v);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Most keys an object of a request may have, and the longest key: four and two times what the largest object any
 * route takes has, a feature map or a request context (MAX_RECORD_ENTRIES, 256 keys of at most 128 characters). class-transformer and
 * class-validator cost more than linear time in keys, so an object of 95,000 unknown keys held the event loop for 5 s
 * before its 400 (listing every key: 9 MB).
 */
export const MAX_OBJECT_KEYS = 1024;
export const MAX_KEY_LENGTH = 256;

/**
 * Keys a plain object inherits (constructor, toString, __proto__ …): class-transformer skips a body key whose value on
 * the new DTO instance is a function, so the whitelist never saw them and they were dropped without a word.
 */
const INHERITED_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * The rules on a whole request part (body, query, path parameters) that the validation pipe applies to every route
 * before any DTO, in one walk: no object with more than MAX_OBJECT_KEYS keys or a key longer than MAX_KEY_LENGTH, and
 * no key or string at any depth that Postgres could not store. The first problem, as a 400 naming where it is
 * (`tasks.click.note`, `itemIds.3`; a bad key names the object that holds it, `root` at the top). Bodies are at most
 * MAX_JSON_DEPTH deep, so the recursion is bounded.
 */
export function requestValueError(value: unknown, root: string, path = ''): FieldError | undefined {
  const field = path || root;
  if (typeof value === 'string') {
    const problem = postgresTextProblem(value);
    return problem === undefined ? undefined : { field, message: `${field} ${problem}` };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const keys = Object.keys(value);
  if (keys.length > MAX_OBJECT_KEYS && !Array.isArray(value))
    return { field, message: `${field} must have at most ${MAX_OBJECT_KEYS} keys, got ${keys.length}` };
  const object = !Array.isArray(value);
  for (const key of keys) {
    if (object && INHERITED_KEYS.has(key)) {
      const at = path ? `${path}.${key}` : key;
      return { field: at, message: `${at} is not a field (a key named like a built-in object property is refused)` };
    }
    if (key.length > MAX_KEY_LENGTH)
      return { field, message: `keys of ${field} must be at most ${MAX_KEY_LENGTH} characters long` };
    const keyProblem = postgresTextProblem(key);
    if (keyProblem) return { field, message: `keys of ${field} ${keyProblem}` };
    const error = requestValueError((value as Record<string, unknown>)[key], root, path ? `${path}.${key}` : key);
    if (error) return error;
  }
  return undefined;
}

/** A string, or a flat object whose keys and string values, that Postgres can store (see postgresTextProblem). */
export function IsPostgresText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isPostgresText',
      validator: {
        validate: (value: unknown) => textProblemIn(value) === undefined,
        defaultMessage: (args?: ValidationArguments) => `$property ${textProblemIn(args?.value)}`,
      },
    },
    options,
  );
}

/** User, item, event and request ids: 1–256 characters of storable text. */
export function IsEntityId(): PropertyDecorator {
  return applyDecorators(IsString(), Length(1, MAX_ID_LENGTH), IsPostgresText());
}

/**
 * A path or query integer written in plain decimal digits. class-transformer's Number() conversion would also read
 * `0x2`, `1e1`, ` 2` or `2.0` as integers, so that `/admin/models/0x2` answered version 2.
 */
export function ToDecimalInt(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^[0-9]{1,16}$/.test(value) ? Number(value) : value,
  );
}

/** Model version ids are Postgres `int`s: anything past 2³¹−1 would fail the query rather than be a 400. */
export function IsVersionId(): PropertyDecorator {
  return applyDecorators(IsInt(), Min(1), Max(2 ** 31 - 1));
}

/** How far ahead of this process's clock a timestamp may be: a caller's clock a little fast is no error. */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * A timestamp (IsTimestamp's) no later than now, give or take CLOCK_SKEW_MS: one dated ahead would hold what is
 * ordered by time until that date (a user's newest click, where a lineage's training data ends).
 */
export function IsNotFuture(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isNotFuture',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || !(Date.parse(value) > Date.now() + CLOCK_SKEW_MS),
        defaultMessage: () => '$property must not be later than now',
      },
    },
    options,
  );
}

/**
 * An ISO-8601 timestamp that Date can also read: class-validator accepts forms such as `2025-W01` or `20250101`
 * that `new Date()` turns into Invalid Date, which would fail later as a 500. A time of day carries its zone:
 * `2025-01-01T10:00:00` is read in the server's local time, while `2025-01-01` (a date alone) is UTC.
 */
export function IsTimestamp(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    IsISO8601({ strict: true }, options),
    ValidateBy(
      {
        name: 'isTimestamp',
        validator: {
          validate: (value: unknown) =>
            typeof value === 'string' &&
            Number.isFinite(Date.parse(value)) &&
            (!TIME_OF_DAY.test(value) || ZONED.test(value)),
          defaultMessage: () => '$property must be a date-time with its zone, such as 2026-11-22T08:00:00Z',
        },
      },
      options,
    ),
  );
}

/** A time of day, after a `T` or a space (both are ISO-8601 to class-validator, and local time to Date). */
const TIME_OF_DAY = /\d{2}:\d{2}/;
/** A time's zone at its end: Z, or an offset (+01:00, -0530) as Date reads it. */
const ZONED = /(Z|[+-]\d{2}:?\d{2})$/i;
