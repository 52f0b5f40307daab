import type { Type } from '@nestjs/common';

import { dtoJsonSchema, type JsonSchema } from './dto-json-schema';

type Scalar = string | number | boolean;

/**
 * One field of the items of a response, over all of them, indexed by item (not by rank): an array of scalars, an
 * array of `width` numbers per item laid end to end, or per key of a record a column of its own. A boolean column may
 * hold 0/1 flags (a Uint8Array).
 */
export type Column<V> = V extends Scalar
  ? ArrayLike<V extends boolean ? V | number : V>
  : V extends readonly (infer E)[]
    ? { values: ArrayLike<E>; width: number }
    : V extends Record<string, infer W>
      ? { keys: readonly string[]; columns: readonly Column<W>[] }
      : never;

/**
 * Every field is named; an optional one may be undefined (left out), a required one may not. The mapped types below
 * go over `keyof T & string` so that they keep neither `?` nor (as `-?` would) strip undefined from optional fields.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
type Maybe<T, K extends keyof T, V> = V | ({} extends Pick<T, K> ? undefined : never);

/** Each field of an item as a column; the items are written in `order`. */
export interface Rows<U> {
  order: ArrayLike<number>;
  columns: { [K in keyof U & string]: Maybe<U, K, Column<NonNullable<U[K]>>> };
}

/** A DTO's values as the writer takes them: every field named, an array of DTOs as columns over its items. */
export type Source<T> = { [K in keyof T & string]: Maybe<T, K, Value<NonNullable<T[K]>>> };

type Value<V> = V extends Scalar ? V : V extends readonly (infer U)[] ? (U extends Scalar ? V : Rows<U>) : Source<V>;

/** A value as JSON. */
type Encode = (value: unknown) => string;
/** A column made ready for one response: appends its key and item i's value to `json`, or nothing when absent. */
type Cell = (json: string, i: number) => string;
/** Writes an item's field from its column, under `key`; `optional` when it may leave an item's field out. */
type CellsOf = ((column: never) => (key: string) => Cell) & { optional?: boolean };

interface Field<E> {
  name: string;
  /** `"name":`, and `,"name":` after another field. */
  first: string;
  next: string;
  required: boolean;
  encode: E;
}

/**
 * A JSON writer for `dto`, built from its OpenAPI metadata (dtoJsonSchema) when first used: the schema decides the
 * order of the fields, which may be left out, and how each value is written (a string escaped, a number as
 * JSON.stringify writes it, an enum from its declared values), so that a field's type and required flag are declared
 * once, on the DTO. An array of DTOs is written from columns (Rows), so that a response of 500 items builds no object
 * per item. A required field without a value, a value outside the field's type or enum, or a schema shape it cannot
 * write throws: a response that would break its documented schema is a bug, not an answer.
 */
export function dtoJsonWriter<T>(dto: Type<T>): (source: Source<T>) => string {
  let write: Encode | undefined;
  return (source) => {
    write ??= encoder(dtoJsonSchema(dto), dto.name);
    return write(source);
  };
}

function fail(path: string, problem: string): never {
  throw new Error(`${path} ${problem}`);
}

/** A number as JSON.stringify writes it (a non-finite one is null). */
function num(x: number): string {
  return Number.isFinite(x) ? '' + x : 'null';
}

function fieldsOf<E>(schema: JsonSchema, path: string, encode: (schema: JsonSchema, path: string) => E): Field<E>[] {
  const required = new Set(schema.required);
  return Object.entries(schema.properties!).map(([name, property]) => ({
    name,
    first: `${JSON.stringify(name)}:`,
    next: `,${JSON.stringify(name)}:`,
    required: required.has(name),
    encode: encode(property, `${path}.${name}`),
  }));
}

/** Writes one value of `schema` (a response's own fields, read by name). */
function encoder(s: JsonSchema, path: string): Encode {
  if (s.enum) {
    const encoded = new Map(s.enum.map((v) => [v, JSON.stringify(v)]));
    return (v) => encoded.get(v) ?? fail(path, `is ${JSON.stringify(v)}, not one of ${JSON.stringify(s.enum)}`);
  }
  switch (s.type) {
    case 'string':
      return (v) => (typeof v === 'string' ? JSON.stringify(v) : fail(path, 'is not a string'));
    case 'integer':
      return (v) => (Number.isInteger(v) ? '' + (v as number) : fail(path, 'is not an integer'));
    case 'number':
      return (v) => (typeof v === 'number' ? num(v) : fail(path, 'is not a number'));
    case 'boolean':
      return (v) => (typeof v === 'boolean' ? '' + v : fail(path, 'is not a boolean'));
    case 'array': {
      const items = s.items!;
      if (items.properties) return rowsEncoder(items, `${path}[]`);
      const item = encoder(items, `${path}[]`);
      return (v) => `[${(v as unknown[]).map((x) => item(x)).join(',')}]`;
    }
    case 'object':
      if (s.properties) return objectEncoder(s, path);
  }
  return fail(path, `has a schema the response writer cannot write: ${JSON.stringify(s)}`);
}

function objectEncoder(schema: JsonSchema, path: string): Encode {
  const fields = fieldsOf(schema, path, encoder);
  return (v) => {
    const value = v as Record<string, unknown>;
    let json = '';
    for (const { name, first, next, required, encode } of fields) {
      const field = value[name];
      if (field === undefined) {
        if (required) fail(`${path}.${name}`, 'is required');
        continue;
      }
      json += (json ? next : '{' + first) + encode(field);
    }
    return json ? json + '}' : '{}';
  };
}

/**
 * An array of DTOs, from its columns: each item's fields in schema order. The first field must be required, so that
 * every other key is written with its comma and each column's key is known before the loop.
 */
function rowsEncoder(schema: JsonSchema, path: string): Encode {
  const fields = fieldsOf(schema, path, cellsOf).map((field, f) => ({
    ...field,
    key: (f === 0 ? field.first : field.next) + opening(schema.properties![field.name]),
  }));
  if (!fields[0]?.required) fail(path, 'must start with a required field to be written from columns');
  return (v) => {
    const { order, columns } = v as Rows<Record<string, unknown>>;
    // Once per response: each column made ready, so that the loop over the items looks nothing up.
    const cells = fields.flatMap(({ name, key, required, encode }) => {
      const column = columns[name];
      if (column === undefined) return required ? fail(`${path}.${name}`, 'is required') : [];
      const cell = encode(column as never)(key);
      if (!required || !encode.optional) return [cell];
      const checked: Cell = (json, i) => {
        const written = cell(json, i);
        return written.length > json.length ? written : fail(`${path}.${name}`, `is required (item ${i})`);
      };
      return [checked];
    });
    let json = '[';
    for (let r = 0; r < order.length; r++) {
      const i = order[r];
      json += r > 0 ? ',{' : '{';
      for (let f = 0; f < cells.length; f++) json = cells[f](json, i);
      json += '}';
    }
    return json + ']';
  };
}

/** What a value of `schema` opens with: part of the key before it, so that it is not a string of its own per item. */
function opening(schema: JsonSchema): string {
  return schema.type === 'object' ? '{' : schema.type === 'array' ? '[' : '';
}

/**
 * Writes an item's field from its column: appends the key given (with the value's opening bracket), the value and its
 * closing bracket to the response's JSON.
 */
function cellsOf(s: JsonSchema, path: string): CellsOf {
  const only = s.enum?.length === 1 ? s.enum[0] : undefined;
  if (s.type === 'boolean' && only === true)
    // A flag: written where it is set, left out elsewhere.
    return Object.assign(
      (c: ArrayLike<unknown>) =>
        (key: string): Cell =>
        (json, i) =>
          c[i] ? json + (key + 'true') : json,
      { optional: true },
    );
  if (s.enum) return fail(path, 'is an enum: an item field the response writer cannot write from a column');
  switch (s.type) {
    case 'string':
      return (c: ArrayLike<string>) => (key) => (json, i) => json + (key + JSON.stringify(c[i]));
    case 'number':
      return (c: ArrayLike<number>) => (key) => (json, i) => json + (key + num(c[i]));
    case 'integer':
      return (c: ArrayLike<number>) => (key) => (json, i) =>
        Number.isInteger(c[i]) ? json + (key + c[i]) : fail(path, 'is not an integer');
    case 'boolean':
      return Object.assign(
        (c: ArrayLike<unknown>) =>
          (key: string): Cell =>
          (json, i) =>
            c[i] === undefined ? json : json + (key + !!c[i]),
        { optional: true },
      );
    case 'array':
      if (s.items?.type === 'number')
        return ({ values, width }: { values: ArrayLike<number>; width: number }) =>
          (key) =>
          (json, i) => {
            json += key;
            for (let e = 0; e < width; e++) json += (e > 0 ? ',' : '') + num(values[i * width + e]);
            return json + ']';
          };
      break;
    case 'object': {
      const { additionalProperties } = s;
      if (s.properties || typeof additionalProperties !== 'object') break;
      const value = cellsOf(additionalProperties, `${path}.*`);
      if (value.optional) break;
      const open = opening(additionalProperties);
      // Keys as JSON (`"click":`), once per keys array: a spec's task names, for instance.
      const encodedKeys = new WeakMap<readonly string[], string[]>();
      return ({ keys, columns }: { keys: readonly string[]; columns: readonly never[] }) =>
        (key) => {
          let encoded = encodedKeys.get(keys);
          if (!encoded) {
            encoded = keys.map((name, k) => `${k > 0 ? ',' : ''}${JSON.stringify(name)}:${open}`);
            encodedKeys.set(keys, encoded);
          }
          const values = columns.map((column, k) => value(column)(encoded[k]));
          return (json, i) => {
            json += key;
            for (let k = 0; k < values.length; k++) json = values[k](json, i);
            return json + '}';
          };
        };
    }
  }
  return fail(path, `has a schema the response writer cannot write from a column: ${JSON.stringify(s)}`);
}
