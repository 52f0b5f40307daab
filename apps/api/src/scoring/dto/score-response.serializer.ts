import fastJson, { type Schema } from 'fast-json-stringify';

import type { ScoreResponseDto } from './score.dto';

/**
 * ScoreResponseDto's JSON schema, compiled into a serialiser that writes the known fields directly instead of
 * walking every object like JSON.stringify (0.54 → 0.16 ms per 500-item response in the issue's measurement).
 * A field missing here is missing from the response: the serializer spec fails when this schema and the DTOs'
 * OpenAPI properties differ.
 */
export const SCORE_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['requestId', 'modelVersion', 'modelRole', 'fusion', 'items'],
  properties: {
    requestId: { type: 'string' },
    modelVersion: { type: 'integer' },
    modelRole: { type: 'string' },
    fusion: {
      type: 'object',
      required: ['type', 'source'],
      properties: { type: { type: 'string' }, source: { type: 'string' } },
    },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['itemId', 'score', 'scores'],
        properties: {
          itemId: { type: 'string' },
          score: { type: 'number' },
          scores: { type: 'object', additionalProperties: { type: 'number' } },
          conditional: { type: 'object', additionalProperties: { type: 'number' } },
          unknown: { type: 'boolean' },
          gates: { type: 'object', additionalProperties: { type: 'array', items: { type: 'number' } } },
        },
      },
    },
    userUnknown: { type: 'boolean' },
  },
} satisfies Schema;

export const serializeScoreResponse: (response: ScoreResponseDto) => string = fastJson(SCORE_RESPONSE_SCHEMA);
