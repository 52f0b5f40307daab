import { ValidateBy, type ValidationOptions } from 'class-validator';

import { postgresTextProblem } from '../../platform/postgres-text.validator';
import {
  isBoundedNumber,
  magnitudeText,
  MAX_LIST_LENGTH,
  MAX_NUMBER_MAGNITUDE,
  MAX_TEXT_VALUE_LENGTH,
} from '../../platform/validation';

export const MAX_FEATURES = 256;
export const MAX_FEATURE_NAME_LENGTH = 128;

/** Why `value` is not a feature map, as a sentence that names the failing field (`features.age`); undefined if it is one. */
export function featureMapProblem(value: unknown, property: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `${property} must be an object mapping feature names to a number, string, boolean, list of strings or null`;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_FEATURES)
    return `${property} must have at most ${MAX_FEATURES} features, got ${entries.length}`;
  for (const [name, v] of entries) {
    if (name.length === 0 || name.length > MAX_FEATURE_NAME_LENGTH || postgresTextProblem(name)) {
      return `${property} has an invalid feature name ${JSON.stringify(name)}: names are 1–${MAX_FEATURE_NAME_LENGTH} characters, without NUL or unpaired surrogates`;
    }
    const field = `${property}.${name}`;
    if (Array.isArray(v)) {
      const problem = listProblem(v, field);
      if (problem) return problem;
      continue;
    }
    const textProblem = typeof v === 'string' ? stringProblem(v) : undefined;
    if (textProblem) return `${field} ${textProblem}`;
    if (!(v === null || typeof v === 'string' || typeof v === 'boolean' || isBoundedNumber(v))) {
      return `${field} must be a number (within ±${magnitudeText(MAX_NUMBER_MAGNITUDE)}), string, boolean, list of strings or null`;
    }
  }
  return undefined;
}

/** A string value (or list element): storable text of at most MAX_TEXT_VALUE_LENGTH characters. */
function stringProblem(value: string): string | undefined {
  if (value.length > MAX_TEXT_VALUE_LENGTH) return `must be at most ${MAX_TEXT_VALUE_LENGTH} characters long`;
  return postgresTextProblem(value);
}

function listProblem(values: unknown[], field: string): string | undefined {
  if (values.length > MAX_LIST_LENGTH)
    return `${field} must have at most ${MAX_LIST_LENGTH} values, got ${values.length}`;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'string') return `${field}[${i}] must be a string`;
    const textProblem = stringProblem(v);
    if (textProblem) return `${field}[${i}] ${textProblem}`;
  }
  return undefined;
}

/** Feature values are scalars (null: missing, scored with the default); names and count are bounded. */
export function IsFeatureMap(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isFeatureMap',
      validator: {
        validate: (value: unknown, args) => featureMapProblem(value, args?.property ?? '') === undefined,
        defaultMessage: (args) => featureMapProblem(args?.value, args?.property ?? '') ?? '',
      },
    },
    options,
  );
}
