import { SCORE_RESPONSE_SCHEMA, serializeScoreResponse } from './score-response.serializer';
import type { ScoreResponseDto } from './score.dto';

describe('serializeScoreResponse', () => {
  it('writes what JSON.stringify writes, for a response with every field', () => {
    const response: ScoreResponseDto = {
      requestId: 'r-"1"',
      modelVersion: 7,
      modelRole: 'canary',
      fusion: { type: 'product', source: 'request' },
      items: [
        {
          itemId: 'i-2',
          score: 0.41,
          scores: { click: 0.31, like: 0.2 },
          conditional: { like: 0.645 },
          gates: { click: [0.25, 0.75] },
        },
        { itemId: 'i-\u00e9', score: -3.5e-8, scores: { click: 1e-12, like: 0 }, unknown: true },
      ],
      userUnknown: true,
    };
    expect(JSON.parse(serializeScoreResponse(response))).toEqual(JSON.parse(JSON.stringify(response)));
  });

  it("serialises by the DTOs' own metadata: every documented field with its type, the required ones required", () => {
    expect(SCORE_RESPONSE_SCHEMA).toEqual({
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
    });
  });
});
