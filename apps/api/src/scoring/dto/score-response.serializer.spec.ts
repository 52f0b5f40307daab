import { parseModelSpec, type ModelSpec } from '@app/mmoe/serving';
import { compileFusion } from '@app/registry';

import { dtoJsonSchema, type JsonSchema } from '../../platform/dto-json-schema';
import { rank } from '../ranking';
import { serializeScoreResponse, type ScoredResponse } from './score-response.serializer';
import { ScoredItemDto, ScoreResponseDto } from './score.dto';

/**
 * Where `value` breaks `schema` (the DTOs' OpenAPI metadata, as dtoJsonSchema reads it): a property the schema does
 * not declare, a required one missing, a value of another type. Empty when it conforms.
 */
function violations(value: unknown, schema: JsonSchema, path = '$'): string[] {
  const { type } = schema;
  if (type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${path} is not an object`];
    const { properties = {}, required = [], additionalProperties } = schema;
    return [
      ...required.filter((name) => !(name in value)).map((name) => `${path}.${name} is missing`),
      ...Object.entries(value).flatMap(([name, v]) => {
        const declared =
          properties[name] ?? (typeof additionalProperties === 'object' ? additionalProperties : undefined);
        return declared ? violations(v, declared, `${path}.${name}`) : [`${path}.${name} is not documented`];
      }),
    ];
  }
  if (type === 'array') {
    if (!Array.isArray(value)) return [`${path} is not an array`];
    return value.flatMap((v, i) => violations(v, schema.items!, `${path}[${i}]`));
  }
  if (schema.enum && !schema.enum.includes(value)) return [`${path} is not one of ${JSON.stringify(schema.enum)}`];
  const ok =
    type === 'integer'
      ? Number.isInteger(value)
      : type === 'number'
        ? typeof value === 'number' || value === null
        : typeof value === type;
  return ok ? [] : [`${path} is not ${type}`];
}

/** Two experts with a gate per task; `like` an ESMM task on click. */
const spec: ModelSpec = parseModelSpec({
  features: [{ name: 'f', type: 'numeric' }],
  model: { architecture: 'mmoe', experts: 2, expertUnits: [4], towerUnits: [4] },
  tasks: [
    { name: 'click', type: 'binary', label: 'click' },
    { name: 'like', type: 'binary', label: 'like', conditionalOn: 'click' },
    { name: 'watch_time', type: 'regression', label: 'watch_time' },
  ],
});

/** A float32 as the shortest decimal that reads back as it (toPrecision's, the obvious way). */
function float32(x: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const decimal = Number(x.toPrecision(digits));
    if (Math.fround(decimal) === x) return decimal;
  }
  return Number(x.toPrecision(9));
}

/** The response as objects, the obvious way, each float32 as its shortest decimal: what the serializer's JSON must equal. */
function asDto({ requestId, model, fusion, ranking, userUnknown }: ScoredResponse): ScoreResponseDto {
  const { scores, conditional, gateWeights } = ranking.result;
  const items = Array.from(ranking.order, (i): ScoredItemDto => {
    const item: ScoredItemDto = {
      itemId: ranking.itemIds[i],
      score: ranking.fused[i],
      scores: Object.fromEntries(spec.tasks.map((task, t) => [task.name, float32(scores[t][i])])),
    };
    if (conditional) item.conditional = { like: float32(conditional[0][i]) };
    if (ranking.unknown[i]) item.unknown = true;
    if (gateWeights) {
      item.gates = Object.fromEntries(
        spec.tasks.map((task, t) => [task.name, Array.from(gateWeights[t].subarray(2 * i, 2 * i + 2), float32)]),
      );
    }
    return item;
  });
  return {
    requestId,
    modelVersion: model.versionId,
    modelRole: model.role,
    fusion,
    items,
    ...(userUnknown ? { userUnknown: true } : {}),
  };
}

function response(options: { explain: boolean; userUnknown: boolean }): ScoredResponse {
  const itemIds = ['i-1', 'i-"2"', 'i-\u00e9', 'i-4'];
  const column = (values: number[]) => Float32Array.from(values);
  const result = {
    scores: [column([0.31, 0.9, 1e-12, 0.5]), column([0.2, 0.1, 0, 0.5]), column([3.5, -2, 0, 7])],
    conditional: [column([0.645, 0.11, 0.5, 1])],
    ...(options.explain ? { gateWeights: [0, 1, 2].map(() => column([0.25, 0.75, 0.5, 0.5, 1, 0, 0.1, 0.9])) } : {}),
  };
  const fusion = compileFusion({ type: 'sum', weights: { click: 1, like: 0.5 } }, spec.tasks);
  return {
    requestId: 'r-"1"',
    model: { versionId: 7, role: 'canary', spec },
    fusion: { type: 'sum', source: 'request' },
    ranking: rank(itemIds, Uint8Array.of(0, 1, 0, 0), result, fusion),
    userUnknown: options.userUnknown,
  };
}

describe('serializeScoreResponse', () => {
  it.each([
    ['every field', { explain: true, userUnknown: true }],
    ['the usual fields', { explain: false, userUnknown: false }],
  ])('writes what JSON.stringify writes of the response as objects (scores as float32s), for %s', (_name, options) => {
    const scored = response(options);
    expect(JSON.parse(serializeScoreResponse(scored).toString())).toEqual(JSON.parse(JSON.stringify(asDto(scored))));
  });

  it('ranks by the fused score, ties in request order', () => {
    const ids = JSON.parse(
      serializeScoreResponse(response({ explain: false, userUnknown: false })).toString(),
    ).items.map((item: ScoredItemDto) => item.itemId);
    // fused: 0.41, 0.95, 1e-12, 0.75
    expect(ids).toEqual(['i-"2"', 'i-4', 'i-1', 'i-\u00e9']);
  });

  it('writes a score that is not a finite number as null, as JSON.stringify would', () => {
    const scored = response({ explain: false, userUnknown: false });
    scored.ranking.result.scores[2][0] = NaN;
    const item = JSON.parse(serializeScoreResponse(scored).toString()).items.find(
      (i: ScoredItemDto) => i.itemId === 'i-1',
    );
    expect(item.scores.watch_time).toBeNull();
  });

  it('writes what the response DTOs document, every field of them when all are present', () => {
    const schema = dtoJsonSchema(ScoreResponseDto);
    for (const options of [
      { explain: false, userUnknown: false },
      { explain: true, userUnknown: true },
    ])
      expect(violations(JSON.parse(serializeScoreResponse(response(options)).toString()), schema)).toEqual([]);
    const full = JSON.parse(serializeScoreResponse(response({ explain: true, userUnknown: true })).toString());
    const item = full.items.find((i: ScoredItemDto) => i.unknown);
    expect(Object.keys(full).sort()).toEqual(Object.keys(schema.properties!).sort());
    const itemSchema = schema.properties!.items.items!;
    expect(Object.keys(item).sort()).toEqual(Object.keys(itemSchema.properties!).sort());
  });

  it('refuses to write a response that would break its schema: a required field missing, a value outside its enum', () => {
    const scored = response({ explain: false, userUnknown: false });
    expect(() => serializeScoreResponse({ ...scored, requestId: undefined as never })).toThrow(
      'ScoreResponseDto.requestId is required',
    );
    expect(() => serializeScoreResponse({ ...scored, model: { ...scored.model, role: 'shadow' as never } })).toThrow(
      'ScoreResponseDto.modelRole is "shadow", not one of ["production","canary"]',
    );
    const ranking = { ...scored.ranking, fused: undefined as never };
    expect(() => serializeScoreResponse({ ...scored, ranking })).toThrow('ScoreResponseDto.items[].score is required');
  });
});
