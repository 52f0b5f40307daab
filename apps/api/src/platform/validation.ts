import { applyDecorators, ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { ApiPropertyOptional, type ApiPropertyOptions } from '@nestjs/swagger';
import { Transform, Type, type TransformFnParams } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsNumber,
  IsPositive,
  Max,
  Min,
  ValidateBy,
  ValidateIf,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';

import { InvalidFieldsError, type FieldError } from '@app/common';
import { MAX_NUMBER_MAGNITUDE, MAX_TASK_WEIGHT } from '@app/mmoe/serving';

import { DistinctStrings } from './distinct-strings.checker';
import { postgresTextProblem, requestValueError, textProblemIn } from './postgres-text.validator';

/** class-validator names only the property in its messages; nested ones get their parent path, as Nest does. */
function flatten(errors: ValidationError[], parent?: string): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = messagesOf(error, field, parent).map((message) => ({
      field: keyNamedIn(message, field, error.value),
      message,
    }));
    // A value of the wrong type (a list where an object belongs) has no fields of its own to name.
    const wrongType = Object.keys(error.constraints ?? {}).some((name) => TYPE_CHECKS.has(name));
    return wrongType ? own : [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * The field a sentence names: a rule over a map (a feature map) names the key that failed (`features.age
 * must be …`), which is then the field rather than the map. The map's own keys say where the name ends, since a key
 * may hold spaces.
 */
function keyNamedIn(message: string, field: string, value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !message.startsWith(`${field}.`))
    return field;
  const rest = message.slice(field.length + 1);
  let named: string | undefined;
  for (const key of Object.keys(value)) {
    const next = rest[key.length];
    if ((next === ' ' || next === '[') && rest.startsWith(key) && key.length > (named?.length ?? -1)) named = key;
  }
  return named === undefined ? field : `${field}.${named}`;
}

/** Checks of a value's type: when one fails, the field's other rules (bounds, lengths) say nothing a caller can use. */
const TYPE_CHECKS = new Set(['isInt', 'isNumber', 'isString', 'isBoolean', 'isObject', 'isArray', 'isIn', 'isEnum']);

/**
 * One field's sentences, each naming its path: an unknown or missing field says so; a value of the wrong type gets
 * its type's sentence alone (not every bound beside it: "percent must not be greater than 100" for "10").
 */
function messagesOf({ constraints = {}, value, children }: ValidationError, field: string, parent?: string): string[] {
  const names = Object.keys(constraints);
  if (names.length === 0) return [];
  if (names.includes('whitelistValidation')) return [`${field} is not a field`];
  // Nest's pipe drops the value of an error that has children: theirs is no missing value.
  if (value === undefined && !children?.length) return [`${field} is required`];
  // A type's own sentence first: a list given null is "not an array", not the nested check's "not an object".
  const types = names.filter((name) => TYPE_CHECKS.has(name));
  if (types.length === 0 && names.includes('nestedValidation')) return [`${field} must be an object`];
  return (types.length > 0 ? types : names).map((name) =>
    parent ? `${parent}.${constraints[name]}` : constraints[name],
  );
}

const FAST_CHECK = Symbol('fastCheck');

type FastCheck = (value: unknown) => boolean;

/**
 * A DTO on a hot path: `check` accepts a plain value that the pipe would accept (its decorators and the rules of
 * every route, requestPartError), and never one it refuses; such a value skips class-transformer and class-validator,
 * anything else goes through them for the verdict and the messages.
 */
export function FastValidated(check: FastCheck): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(FAST_CHECK, check, target);
  };
}

/** Reports the time spent validating a fast-validated DTO (by class name), e.g. for the scoring stage breakdown. */
export type ValidationTimer = (dto: string, seconds: number) => void;

class AppValidationPipe extends ValidationPipe {
  constructor(private readonly timer?: ValidationTimer) {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => new InvalidFieldsError(flatten(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const part = REQUEST_PARTS[metadata.type];
    if (!part) return value;
    const dto = metadata.metatype;
    const check = dto && (Reflect.getMetadata(FAST_CHECK, dto) as FastCheck | undefined);
    if (!check) return this.validatePart(value, metadata, part);
    const started = performance.now();
    try {
      return check(value) ? value : await this.validatePart(value, metadata, part);
    } finally {
      this.timer?.(dto.name, (performance.now() - started) / 1000);
    }
  }

  /** The rules of every route, then the DTO's. */
  private validatePart(value: unknown, metadata: ArgumentMetadata, part: RequestPart): Promise<unknown> {
    const error = requestPartError(value, part);
    if (error) throw new InvalidFieldsError([error]);
    return super.transform(value, metadata);
  }
}

export type RequestPart = 'body' | 'query' | 'path';

/** What a 400 calls each part of the request that the pipe validates; custom parameter decorators are left alone. */
const REQUEST_PARTS: Partial<Record<ArgumentMetadata['type'], RequestPart>> = {
  body: 'body',
  query: 'query',
  param: 'path',
};

/**
 * The rules of every route, before any DTO (the pipe's, and Bull Board's hook, which no DTO covers), so that a field
 * added later follows them without a decorator: an empty body is no body ({} to a DTO, so that bodyless POSTs may send
 * a JSON content type), but a body that is there must be a JSON object (`null` would otherwise become {} too and apply
 * every default); no object has more keys, or longer ones, than any route takes, and no key or string anywhere holds
 * text Postgres cannot store (requestValueError).
 */
export function requestPartError(value: unknown, part: RequestPart): FieldError | undefined {
  if (part === 'body' && value !== undefined && !isPlainObject(value))
    return { field: 'body', message: 'body must be a JSON object' };
  return requestValueError(value, part);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A body's list of objects of `dto`, from 1 to `maxItems` of them, each validated as one. An element that is itself
 * a list is read as null, so that the nested check names it (`entities.0 must be an object`): ValidateNested alone
 * steps into a list element and checks its elements instead, so `[[]]` passed and failed further on (500s).
 */
export function ListOf(dto: () => new () => object, maxItems: number): PropertyDecorator {
  // In the order stacked decorators apply (the last first), as the DTOs declared them before.
  return applyDecorators(
    Type(dto),
    ValidateNested({ each: true }),
    Transform(({ value }: TransformFnParams) =>
      Array.isArray(value) ? value.map((v: unknown) => (Array.isArray(v) ? null : v)) : value,
    ),
    ArrayMaxSize(maxItems),
    ArrayMinSize(1),
    IsArray(),
  );
}

/**
 * Validates and transforms every body, query and param DTO; unknown fields are errors, not silently dropped. Before
 * any DTO, the rules of every route (requestPartError).
 */
export function createValidationPipe(timer?: ValidationTimer): ValidationPipe {
  return new AppValidationPipe(timer);
}

/**
 * A body field that may be left out. Unlike class-validator's IsOptional, a JSON `null` is not "left out": it is
 * checked like any other value, so the field's own rules refuse it (a 400 naming the field) instead of letting it
 * through to a NOT NULL column (a 500), into a stored policy (`maxEvents: null`), or to a worker that refuses it.
 * A field where null means something (it clears a setting) keeps IsOptional.
 */
export function IsOmittable(options?: ValidationOptions): PropertyDecorator {
  return ValidateIf((_object, value) => value !== undefined, options);
}

/**
 * A field that may be left out whose value is a JSON number from `min` to `max` (an integer with `integer`; above
 * `min` = 0 rather than at it with `positive`), its OpenAPI schema drawn from the same bounds. `options` adds to the
 * schema (description, default, example).
 */
export function IsNumberIn(
  { min, max }: { min: number; max: number },
  {
    integer = false,
    positive = false,
    ...options
  }: ApiPropertyOptions & { integer?: boolean; positive?: boolean } = {},
): PropertyDecorator {
  // In the order stacked decorators apply (the lowest first), as the DTOs stacked them.
  return applyDecorators(
    Max(max),
    positive ? IsPositive() : Min(min),
    integer ? IsInt() : IsNumber({ allowNaN: false, allowInfinity: false }),
    IsOmittable(),
    ApiPropertyOptional({
      ...(integer && { type: 'integer' }),
      minimum: positive ? 0 : min,
      ...(positive && { exclusiveMinimum: true }),
      maximum: max,
      ...options,
    } as ApiPropertyOptions),
  );
}

/** 'string[]': a list of strings, the value of a sequence feature (a history, tags). */
type FlatValue = 'string' | 'number' | 'boolean' | 'string[]';
/** Values of one list feature; a model reads at most its maxLength last ones. */
export const MAX_LIST_LENGTH = 1024;
/**
 * Longest string a feature or context value (or list element) may be: a category or a token, hashed by the model,
 * not a document. Without it a 900 KB value went into Postgres as readily as a short one.
 */
export const MAX_TEXT_VALUE_LENGTH = 1024;
/** Most entries of a flat record (request context, labels, weights) and its longest key, as of a feature map. */
export const MAX_RECORD_ENTRIES = 256;
export const MAX_RECORD_KEY_LENGTH = 128;
/**
 * The model library's bound on a number a model reads (MAX_NUMBER_MAGNITUDE): beyond it every score of the request was
 * NaN (a 200 with null scores, the item ranked first).
 */
export { MAX_NUMBER_MAGNITUDE };

/** A magnitude as a message writes it: 1000000, 1e18. */
export const magnitudeText = (x: number): string => (x >= 1e7 ? x.toExponential().replace('e+', 'e') : String(x));

export const isBoundedNumber = (value: unknown): boolean =>
  typeof value === 'number' && Math.abs(value) <= MAX_NUMBER_MAGNITUDE;

export const isShortText = (value: unknown): boolean =>
  typeof value === 'string' && value.length <= MAX_TEXT_VALUE_LENGTH;

export const isStringList = (value: unknown): boolean =>
  Array.isArray(value) && value.length <= MAX_LIST_LENGTH && value.every(isShortText);

/** Request context (score calls, events): feature values as a feature map holds them, lists for sequence features. */
const CONTEXT_VALUE_TYPES: FlatValue[] = ['string', 'number', 'boolean', 'string[]'];
const CONTEXT_VALUE_SCHEMA = {
  oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'array', items: { type: 'string' } }],
};

/** The optional request context of a score call or an event, documented and checked alike wherever it is taken. */
export function IsRequestContext(description: string): PropertyDecorator {
  // In the order stacked decorators apply (the lowest first), as the DTOs stacked them.
  return applyDecorators(
    IsFlatRecord(CONTEXT_VALUE_TYPES),
    IsOmittable(),
    ApiPropertyOptional({
      description,
      type: 'object',
      additionalProperties: CONTEXT_VALUE_SCHEMA,
      example: { device: 'mobile', hour: 21 },
    }),
  );
}

/**
 * A plain object whose values are all of the given primitive types (numbers within ±maxMagnitude, by default
 * MAX_NUMBER_MAGNITUDE; strings of at most MAX_TEXT_VALUE_LENGTH), with at most MAX_RECORD_ENTRIES keys of at most
 * MAX_RECORD_KEY_LENGTH characters, keys and string values Postgres can store (they end up in jsonb), e.g. request
 * context.
 */
export function IsFlatRecord(
  types: FlatValue[],
  { maxMagnitude = MAX_NUMBER_MAGNITUDE, ...options }: ValidationOptions & { maxMagnitude?: number } = {},
): PropertyDecorator {
  const accepts = (value: unknown) =>
    Array.isArray(value)
      ? types.includes('string[]') && isStringList(value)
      : types.includes(typeof value as FlatValue) &&
        (typeof value !== 'number' || Math.abs(value) <= maxMagnitude) &&
        (typeof value !== 'string' || value.length <= MAX_TEXT_VALUE_LENGTH);
  // What one value may be, e.g. "a number between -1e6 and 1e6", or "a string, a number, a boolean or a list of
  // strings (numbers between -1e18 and 1e18, strings of at most 1024 characters, lists of at most 1024 strings)".
  const names = types.map((type) => FLAT_VALUE_NAMES[type]);
  const bounds = [
    types.includes('number') && `numbers between -${magnitudeText(maxMagnitude)} and ${magnitudeText(maxMagnitude)}`,
    types.some((t) => t.startsWith('string')) && `strings of at most ${MAX_TEXT_VALUE_LENGTH} characters`,
    types.includes('string[]') && `lists of at most ${MAX_LIST_LENGTH} strings`,
  ].filter((bound): bound is string => typeof bound === 'string');
  const kinds =
    names.length === 1
      ? `${names[0]}${bounds.length > 0 ? ` ${bounds[0].replace(/^\w+ /, '')}` : ''}`
      : `${names.slice(0, -1).join(', ')} or ${names.at(-1)} (${bounds.join(', ')})`;
  /** The first problem, naming the key whose value fails (`context.device`), which the 400 then gives as its field. */
  const problem = (value: unknown, property: string): string | undefined => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return `${property} must be an object mapping names to ${kinds}`;
    const keys = Object.keys(value);
    if (keys.length > MAX_RECORD_ENTRIES)
      return `${property} must have at most ${MAX_RECORD_ENTRIES} keys, got ${keys.length}`;
    if (keys.some((key) => key.length > MAX_RECORD_KEY_LENGTH))
      return `${property} must have keys of at most ${MAX_RECORD_KEY_LENGTH} characters`;
    const failing = keys.find((key) => !accepts((value as Record<string, unknown>)[key]));
    if (failing !== undefined) return `${property}.${failing} must be ${kinds}`;
    const textProblem = textProblemIn(value);
    return textProblem && `${property} ${textProblem}`;
  };
  return ValidateBy(
    {
      name: 'isFlatRecord',
      constraints: [types],
      validator: {
        validate: (value: unknown, args) => problem(value, args?.property ?? '') === undefined,
        defaultMessage: (args) => problem(args?.value, args?.property ?? '') ?? '',
      },
    },
    options,
  );
}

const FLAT_VALUE_NAMES: Record<FlatValue, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'a boolean',
  'string[]': 'a list of strings',
};

/** Blend weights by task name, bounded so that the blended score stays finite (see MAX_TASK_WEIGHT). */
export function IsObjectiveWeights(): PropertyDecorator {
  return IsFlatRecord(['number'], { maxMagnitude: MAX_TASK_WEIGHT });
}

/**
 * An array of distinct strings of minLength–maxLength characters, checked without class-validator's per-element
 * validators (each: true), which cost about a millisecond on a 1,000-id list, on the scoring hot path; repeats are
 * found by DistinctStrings, as the scoring route's fast check finds them.
 */
export function IsUniqueStrings(minLength: number, maxLength: number, options?: ValidationOptions): PropertyDecorator {
  const distinct = new DistinctStrings();
  const elementProblem = (element: unknown, i: number): string | undefined => {
    if (typeof element !== 'string') return `must contain only strings (element ${i} is not)`;
    if (element.length < minLength || element.length > maxLength)
      return `must contain strings of ${minLength}–${maxLength} characters (element ${i} is not)`;
    const textProblem = postgresTextProblem(element);
    return textProblem ? `must contain storable text (element ${i} ${textProblem})` : undefined;
  };
  const firstProblem = (value: unknown): string | undefined => {
    if (!Array.isArray(value)) return 'must be an array';
    // The first bad element, unless an element before it repeats an earlier one: the problem met first is named.
    let end = 0;
    let problem: string | undefined;
    while (end < value.length && !(problem = elementProblem(value[end], end))) end++;
    const repeat = distinct.firstRepeat(value, end);
    return repeat === -1
      ? problem
      : `must not contain duplicates ("${(value[repeat] as string).slice(0, 64)}" repeats)`;
  };
  return ValidateBy(
    {
      name: 'isUniqueStrings',
      validator: {
        validate: (value: unknown) => firstProblem(value) === undefined,
        defaultMessage: (args) => `${args?.property} ${firstProblem(args?.value)}`,
      },
    },
    options,
  );
}
