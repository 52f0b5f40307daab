import { applyDecorators } from '@nestjs/common';
import { IsString, Length, Matches, ValidateBy, type ValidationOptions } from 'class-validator';

export const MAX_ID_LENGTH = 256;

// Postgres text and jsonb cannot hold NUL characters: they are rejected as bad input here rather than failing the insert.

/** A string, or a flat object's keys or string values, holding a NUL character. */
export function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  return typeof value === 'object' && value !== null && Object.entries(value).some(([key, v]) => key.includes('\0') || hasNul(v));
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
    { name: 'isNulFree', validator: { validate: (value: unknown) => !hasNul(value), defaultMessage: () => '$property must not contain NUL characters' } },
    options,
  );
}
