import type { Type } from '@nestjs/common';

import { dtoJsonSchema, type JsonSchema } from './dto-json-schema';
import { JsonBytes } from './json-bytes';

type Scalar = string | number | boolean;

/**
 * One field of the items of a response, over all of them, indexed by item (not by rank): an array of scalars, an
 * array of `width` numbers per item laid end to end, or per key of a record a column of its own. A flag's column
 * (`enum: [true]`) may hold 0/1 (a Uint8Array).
 */
export type Column<V> = V extends Scalar
  ? ArrayLike<V extends boolean ? V | number : V>
  : V extends readonly number[]
    ? { values: ArrayLike<number>; width: number }
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

/**
 * A DTO's values as the writer takes them: every field named, an array of DTOs as columns over its items (an array of
 * scalars is no response field it writes).
 */
export type Source<T> = { [K in keyof T & string]: Maybe<T, K, Value<NonNullable<T[K]>>> };

type Value<V> = V extends Scalar
  ? V
  : V extends readonly (infer U)[]
    ? U extends Scalar
      ? never
      : Rows<U>
    : Source<V>;

/** Writes a value as JSON. */
type Encode = (value: unknown) => void;
/**
 * A column made ready for one response: writes its key and item i's value, or nothing when absent.
 * `bytes`: the most it writes for an item but its strings, which make room for themselves.
 */
/**
 * `bytes`: the most it writes for any item; `extra(i)`: what more it may write for item i (a string's length is known
 * only per item). The item's room is reserved once for all its cells: a string that made room for itself alone would
 * use the room of the cells after it.
 */
type Cell = ((i: number) => void) & { bytes: number; extra?: (i: number) => number };
/** Writes an item's field from its column, under `key`; `optional` when it may leave an item's field out. */
type CellsOf = ((column: never) => (key: Uint8Array) => Cell) & { optional?: boolean };

interface Field<E> {
  name: string;
  /** `{"name":` for the first field, `,"name":` for the others (an item's with its value's opening bracket). */
  key: Uint8Array;
  required: boolean;
  encode: E;
}

/** The one buffer every writer writes into: each writes a whole response, synchronously, then copies it out. */
const out = new JsonBytes();
/** The most a number takes as JSON (`-1.2345678901234567e-308`). */
const NUMBER_BYTES = 24;
const TRUE = Buffer.from('true');
/**
 * How a column's numbers are written, chosen once per response: a Float32Array's (a model's scores, its gate weights)
 * as float32s, the shortest decimal that reads back as the same float32 (half the bytes of the double's digits, which
 * are noise beyond its precision), any other as JSON.stringify writes it.
 */
const writeFloat32 = (x: number) => out.float32(x);
const writeNumber = (x: number) => out.number(x);
const numbersOf = (column: ArrayLike<number>) => (column instanceof Float32Array ? writeFloat32 : writeNumber);

/**
 * A JSON writer for `dto`, built from its OpenAPI metadata (dtoJsonSchema) when first used: the schema decides the
 * order of the fields, which may be left out, and how each value is written (a string escaped, a number as
 * JSON.stringify writes it, an enum from its declared values), so that a field's type and required flag are declared
 * once, on the DTO. The JSON is written as UTF-8 bytes into a reused buffer (JsonBytes) and answered as an exact-size
 * copy off V8's heap; an array of DTOs is written from columns (Rows), so that a response of 500 items builds no
 * object per item. A required field without a value, a value outside the field's type or enum, or a schema shape it
 * cannot write throws: a response that would break its documented schema is a bug, not an answer.
 *
 * It writes what the response DTOs declare and no more (dto-json.writer.spec.ts lists it): a DTO's own fields may be
 * strings, integers, enums, nested DTOs and arrays of DTOs; an item's (a column's) strings, numbers, flags
 * (`enum: [true]`) and records of numbers or of number arrays. Any other field throws when the writer is built.
 */
export function dtoJsonWriter<T>(dto: Type<T>): (source: Source<T>) => Buffer {
  let write: Encode | undefined;
  return (source) => {
    write ??= encoder(dtoJsonSchema(dto), dto.name);
    out.clear();
    write(source);
    return out.copy();
  };
}

function fail(path: string, problem: string): never {
  throw new Error(`${path} ${problem}`);
}

const bytesOf = (s: string) => Buffer.from(s);

/**
 * A DTO's fields in schema order, each with its key. The first must be required, so that it is always the first
 * written and every other key is written with its comma: the keys are known before any value.
 */
function fieldsOf<E>(
  schema: JsonSchema,
  path: string,
  encode: (schema: JsonSchema, path: string) => E,
  openingOf: (schema: JsonSchema) => string,
): Field<E>[] {
  const required = new Set(schema.required);
  const fields = Object.entries(schema.properties!).map(([name, property], f) => ({
    name,
    key: bytesOf(`${f === 0 ? '{' : ','}${JSON.stringify(name)}:${openingOf(property)}`),
    required: required.has(name),
    encode: encode(property, `${path}.${name}`),
  }));
  if (!fields[0]?.required) fail(path, 'must start with a required field to be written');
  return fields;
}

/** Writes one value of `schema` (a response's own fields, read by name). */
function encoder(s: JsonSchema, path: string): Encode {
  if (s.enum) {
    const encoded = new Map(s.enum.map((v) => [v, bytesOf(JSON.stringify(v))]));
    return (v) => {
      const bytes = encoded.get(v) ?? fail(path, `is ${JSON.stringify(v)}, not one of ${JSON.stringify(s.enum)}`);
      out.reserve(bytes.length);
      out.raw(bytes);
    };
  }
  switch (s.type) {
    case 'string':
      return (v) => (typeof v === 'string' ? out.string(v) : fail(path, 'is not a string'));
    case 'integer':
      return (v) => {
        if (!Number.isInteger(v)) fail(path, 'is not an integer');
        out.reserve(NUMBER_BYTES);
        out.ascii('' + (v as number));
      };
    case 'array':
      if (s.items?.properties) return rowsEncoder(s.items, `${path}[]`);
      break;
    case 'object':
      if (s.properties) return objectEncoder(s, path);
  }
  return fail(path, `has a schema the response writer cannot write: ${JSON.stringify(s)}`);
}

function objectEncoder(schema: JsonSchema, path: string): Encode {
  const fields = fieldsOf(schema, path, encoder, () => '');
  return (v) => {
    const value = v as Record<string, unknown>;
    for (const { name, key, required, encode } of fields) {
      const field = value[name];
      if (field === undefined) {
        if (required) fail(`${path}.${name}`, 'is required');
        continue;
      }
      out.reserve(key.length);
      out.raw(key);
      encode(field);
    }
    out.reserve(1);
    out.byte(0x7d);
  };
}

/** An array of DTOs, from its columns: each item's fields in schema order. */
function rowsEncoder(schema: JsonSchema, path: string): Encode {
  const fields = fieldsOf(schema, path, cellsOf, opening);
  // A flag is left out where it is not set: a required one would break the schema there.
  for (const { name, required, encode } of fields)
    if (required && encode.optional) fail(`${path}.${name}`, 'is a flag, which an item may leave out: not required');
  return (v) => {
    const { order, columns } = v as Rows<Record<string, unknown>>;
    // Once per response: each column made ready, so that the loop over the items looks nothing up.
    const cells = fields.flatMap(({ name, key, required, encode }) => {
      const column = columns[name];
      if (column === undefined) return required ? fail(`${path}.${name}`, 'is required') : [];
      return [encode(column as never)(key)];
    });
    // `,`, the item's fields (its `{` with the first key), `}`.
    const itemBytes = cells.reduce((n, cell) => n + cell.bytes, 2);
    const extra = extraOf(cells);
    out.reserve(1);
    out.byte(0x5b);
    for (let r = 0; r < order.length; r++) {
      const i = order[r];
      out.reserve(extra ? itemBytes + extra(i) : itemBytes);
      if (r > 0) out.byte(0x2c);
      for (let f = 0; f < cells.length; f++) cells[f](i);
      out.byte(0x7d);
    }
    out.reserve(1);
    out.byte(0x5d);
  };
}

/** What a value of `schema` opens with: part of the key before it, so that it is not a write of its own per item. */
function opening(schema: JsonSchema): string {
  return schema.type === 'object' ? '{' : schema.type === 'array' ? '[' : '';
}

/** A cell from how it writes item i, the most it writes for any item, and what more for item i. */
function cell(write: (i: number) => void, bytes: number, extra?: (i: number) => number): Cell {
  return Object.assign(write, { bytes, extra });
}

/** The sum of the cells' extra bytes for an item, or undefined when none has any. */
function extraOf(cells: readonly Cell[]): ((i: number) => number) | undefined {
  const sized = cells.flatMap((c) => c.extra ?? []);
  if (sized.length === 0) return undefined;
  // A loop, not reduce: this runs per item of every response, and reduce's callback would be a closure per item.
  return (i) => {
    let n = 0;
    for (let k = 0; k < sized.length; k++) n += sized[k](i);
    return n;
  };
}

/**
 * Writes an item's field from its column: the key given (with the value's opening bracket), the value and its closing
 * bracket.
 */
function cellsOf(s: JsonSchema, path: string): CellsOf {
  const only = s.enum?.length === 1 ? s.enum[0] : undefined;
  if (s.type === 'boolean' && only === true)
    // A flag: written where it is set, left out elsewhere.
    return Object.assign(
      (c: ArrayLike<unknown>) => (key: Uint8Array) =>
        cell((i) => {
          if (!c[i]) return;
          out.raw(key);
          out.raw(TRUE);
        }, key.length + 4),
      { optional: true },
    );
  if (s.enum) return fail(path, 'is an enum: an item field the response writer cannot write from a column');
  switch (s.type) {
    case 'string':
      return (c: ArrayLike<string>) => (key: Uint8Array) =>
        cell(
          (i) => {
            out.raw(key);
            out.string(c[i]);
          },
          key.length,
          (i) => JsonBytes.maxStringBytes(c[i]),
        );
    case 'number':
      return (c: ArrayLike<number>) => (key: Uint8Array) => {
        const write = numbersOf(c);
        return cell((i) => {
          out.raw(key);
          write(c[i]);
        }, key.length + NUMBER_BYTES);
      };
    case 'array':
      if (s.items?.type === 'number')
        return ({ values, width }: { values: ArrayLike<number>; width: number }) =>
          (key: Uint8Array) => {
            const write = numbersOf(values);
            return cell(
              (i) => {
                out.raw(key);
                for (let e = 0; e < width; e++) {
                  if (e > 0) out.byte(0x2c);
                  write(values[i * width + e]);
                }
                out.byte(0x5d);
              },
              key.length + width * (NUMBER_BYTES + 1) + 1,
            );
          };
      break;
    case 'object': {
      const { additionalProperties } = s;
      if (s.properties || typeof additionalProperties !== 'object') break;
      const value = cellsOf(additionalProperties, `${path}.*`);
      if (value.optional) break;
      const open = opening(additionalProperties);
      const numbers = additionalProperties.type === 'number' && !additionalProperties.enum;
      // Keys as JSON bytes (`"click":`), once per keys array: a spec's task names, for instance.
      const encodedKeys = new WeakMap<readonly string[], Uint8Array[]>();
      return ({ keys, columns }: { keys: readonly string[]; columns: readonly never[] }) =>
        (key: Uint8Array) => {
          let encoded = encodedKeys.get(keys);
          if (!encoded) {
            encoded = keys.map((name, k) => bytesOf(`${k > 0 ? ',' : ''}${JSON.stringify(name)}:${open}`));
            encodedKeys.set(keys, encoded);
          }
          if (numbers) {
            // Numbers (a task's scores), the common case, written here: no call per key per item.
            const values = columns as readonly ArrayLike<number>[];
            const writes = values.map(numbersOf);
            return cell(
              (i) => {
                out.raw(key);
                for (let k = 0; k < values.length; k++) {
                  out.raw(encoded[k]);
                  writes[k](values[k][i]);
                }
                out.byte(0x7d);
              },
              encoded.reduce((n, k) => n + k.length + NUMBER_BYTES, key.length + 1),
            );
          }
          const values = columns.map((column, k) => value(column)(encoded[k]));
          return cell(
            (i) => {
              out.raw(key);
              for (let k = 0; k < values.length; k++) values[k](i);
              out.byte(0x7d);
            },
            values.reduce((n, v) => n + v.bytes, key.length + 1),
            extraOf(values),
          );
        };
    }
  }
  return fail(path, `has a schema the response writer cannot write from a column: ${JSON.stringify(s)}`);
}
