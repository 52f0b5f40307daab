import { DECORATORS } from '@nestjs/swagger';

import { SCORE_RESPONSE_SCHEMA, serializeScoreResponse } from './score-response.serializer';
import { FusionUsedDto, ScoredItemDto, ScoreResponseDto } from './score.dto';

/** The property names a DTO documents in OpenAPI (what clients are told the response holds). */
const documented = (dto: new () => object) =>
  (Reflect.getMetadata(DECORATORS.API_MODEL_PROPERTIES_ARRAY, dto.prototype) as string[])
    .map((p) => p.replace(/^:/, ''))
    .sort();

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

  it('writes every field the response DTOs document, and only those', () => {
    const { properties } = SCORE_RESPONSE_SCHEMA;
    expect(Object.keys(properties).sort()).toEqual(documented(ScoreResponseDto));
    expect(Object.keys(properties.fusion.properties).sort()).toEqual(documented(FusionUsedDto));
    expect(Object.keys(properties.items.items.properties).sort()).toEqual(documented(ScoredItemDto));
  });
});
