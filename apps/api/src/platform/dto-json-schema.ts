import type { Type } from '@nestjs/common';
import { DECORATORS } from '@nestjs/swagger';

type Primitive = 'string' | 'number' | 'integer' | 'boolean';

/** The JSON schema of a response DTO, as far as its metadata says it. */
export interface JsonSchema {
  type?: Primitive | 'object' | 'array';
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
}

interface PropertyMetadata {
  type?: unknown;
  isArray?: boolean;
  required?: boolean;
  enum?: unknown[];
  additionalProperties?: JsonSchema | boolean;
}

const PRIMITIVES = new Map<unknown, Primitive>([
  [String, 'string'],
  [Number, 'number'],
  [Boolean, 'boolean'],
]);

/**
 * A response DTO's JSON schema read from its @ApiProperty metadata — the same source as the OpenAPI document — so
 * that a field, its type and whether it is required are declared once: a field added to a DTO is serialised and
 * documented together. Nested DTOs and arrays of them are followed; a property declared `type: 'object'` keeps its
 * `additionalProperties`, a primitive its `enum`.
 */
export function dtoJsonSchema(dto: Type): JsonSchema {
  const names = (Reflect.getMetadata(DECORATORS.API_MODEL_PROPERTIES_ARRAY, dto.prototype) ?? []) as string[];
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const name of names.map((n) => n.replace(/^:/, ''))) {
    const meta = Reflect.getMetadata(DECORATORS.API_MODEL_PROPERTIES, dto.prototype, name) as PropertyMetadata;
    const schema = propertySchema(dto, name, meta);
    properties[name] = meta.isArray ? { type: 'array', items: schema } : schema;
    if (meta.required !== false) required.push(name);
  }
  return { type: 'object', required, properties };
}

function propertySchema(dto: Type, name: string, meta: PropertyMetadata): JsonSchema {
  const { type } = meta;
  const primitive = PRIMITIVES.get(type);
  if (primitive) return withEnum(primitive, meta);
  if (type === Object || type === 'object')
    return meta.additionalProperties === undefined
      ? { type: 'object' }
      : { type: 'object', additionalProperties: meta.additionalProperties };
  if (typeof type === 'string' && ['string', 'number', 'integer', 'boolean'].includes(type))
    return withEnum(type as Primitive, meta);
  if (typeof type === 'function') return dtoJsonSchema(type as Type);
  throw new Error(`${dto.name}.${name}: no JSON schema for its declared type ${String(type)}`);
}

/** A primitive's schema, with the values it is limited to when the property names them. */
function withEnum(type: Primitive, { enum: values }: PropertyMetadata): JsonSchema {
  return values ? { type, enum: values } : { type };
}
