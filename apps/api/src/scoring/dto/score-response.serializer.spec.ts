import { serializeScoreResponse } from './score-response.serializer';
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
});
