import { ValidateBy, type ValidationOptions } from 'class-validator';

import { postgresTextProblem } from '../../platform/postgres-text.validator';

export const MAX_FEATURES = 256;
export const MAX_FEATURE_NAME_LENGTH = 128;

/** Why `value` is not a feature map, as a sentence that names the failing field (`features.age`); undefined if it is one. */
export function featureMapProblem(value: unknown, property: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `${property} must be an object mapping feature names to a number, string, boolean or null`;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_FEATURES)
    return `${property} must have at most ${MAX_FEATURES} features, got ${entries.length}`;
  for (const [name, v] of entries) {
    if (name.length === 0 || name.length > MAX_FEATURE_NAME_LENGTH || postgresTextProblem(name)) {
      return `${property} has an invalid feature name ${JSON.stringify(name)}: names are 1–${MAX_FEATURE_NAME_LENGTH} characters, without NUL or unpaired surrogates`;
    }
    const field = `${property}.${name}`;
    const textProblem = typeof v === 'string' ? postgresTextProblem(v) : undefined;
    if (textProblem) return `${field} ${textProblem}`;
    if (!(
      v === null ||
      typeof v === 'string' ||
      typeof v === 'boolean' ||
      (typeof v === 'number' && Number.isFinite(v))
    )) {
      return `${field} must be a number, string, boolean or null`;
    }
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
