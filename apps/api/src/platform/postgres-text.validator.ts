import { applyDecorators } from '@nestjs/common';
import {
  IsInt,
  IsISO8601,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateBy,
  type ValidationOptions,
} from 'class-validator';

export const MAX_ID_LENGTH = 256;

// Values that Postgres would reject (NUL characters in text and jsonb, out-of-range ints, unreadable timestamps) are
// rejected here as bad input rather than failing the query with a 500.

/** A string, or a flat object's keys or string values, holding a NUL character. */
export function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.entries(value).some(([key, v]) => key.includes('\0') || hasNul(v))
  );
}

/** User, item, event and request ids: 1–256 characters. */
export function IsEntityId(): PropertyDecorator {
  return applyDecorators(
    IsString(),
    Length(1, MAX_ID_LENGTH),
    Matches(/^[^\0]*$/, { message: '$property must not contain NUL characters' }),
  );
}

export function IsNulFree(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isNulFree',
      validator: {
        validate: (value: unknown) => !hasNul(value),
        defaultMessage: () => '$property must not contain NUL characters',
      },
    },
    options,
  );
}

/** Model version ids are Postgres `int`s: anything past 2³¹−1 would fail the query rather than be a 400. */
export function IsVersionId(): PropertyDecorator {
  return applyDecorators(IsInt(), Min(1), Max(2 ** 31 - 1));
}

/**
 * An ISO-8601 timestamp that Date can also read: class-validator accepts forms such as `2025-W01` or `20250101`
 * that `new Date()` turns into Invalid Date, which would fail later as a 500.
 */
export function IsTimestamp(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    IsISO8601({ strict: true }, options),
    ValidateBy(
      {
        name: 'isTimestamp',
        validator: {
          validate: (value: unknown) => typeof value === 'string' && Number.isFinite(Date.parse(value)),
          defaultMessage: () => '$property must be a date-time such as 2026-11-22T08:00:00Z',
        },
      },
      options,
    ),
  );
}
