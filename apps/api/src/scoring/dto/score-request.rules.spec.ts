import { ValidationPipe } from '@nestjs/common';

import { requestValueError } from '../../platform/postgres-text.validator';
import { isValidScoreRequest } from './score-request.rules';
import { ScoreRequestDto } from './score.dto';

/**
 * The app pipe's rules without its fast path: the value rules of every route, then class-validator with the app's
 * options. The authority the fast check must agree with.
 */
const classValidator = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });
const acceptedByDecorators = async (body: unknown) =>
  requestValueError(body, 'body') === undefined &&
  classValidator.transform(body, { type: 'body', metatype: ScoreRequestDto }).then(
    () => true,
    () => false,
  );

const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-${i}`);
const valid = { userId: 'u-1', itemIds: ['i-1', 'i-2'] };

const bodies: [string, unknown][] = [
  ['the minimal body', valid],
  [
    'every field',
    { ...valid, context: { device: 'mobile', hour: 21, night: true }, objectiveWeights: { click: 1 }, explain: false },
  ],
  ['null optional fields', { ...valid, context: null, objectiveWeights: null, explain: null }],
  ['a null fusion', { ...valid, fusion: null }],
  ['1,000 candidates', { userId: 'u', itemIds: ids(1000) }],
  ['an id of 256 characters', { userId: 'u'.repeat(256), itemIds: ['i'.repeat(256)] }],
  ['empty context and weights', { ...valid, context: {}, objectiveWeights: {} }],
  [
    'a fusion of 1,025 weights',
    { ...valid, fusion: { type: 'sum', weights: Object.fromEntries(ids(1025).map((k) => [k, 1])) } },
  ],
  ['a fusion key of 257 characters', { ...valid, fusion: { type: 'sum', weights: { ['k'.repeat(257)]: 1 } } }],
  ['a context number at the bound', { ...valid, context: { price: -1e18 } }],
  ['a context number beyond a float32', { ...valid, context: { price: 1e39 } }],
  ['no body', undefined],
  ['null', null],
  ['an array', [valid]],
  ['a string', 'u-1'],
  ['an unknown field', { ...valid, limit: 10 }],
  ['no userId', { itemIds: ['i-1'] }],
  ['a numeric userId', { ...valid, userId: 42 }],
  ['an empty userId', { ...valid, userId: '' }],
  ['a userId of 257 characters', { ...valid, userId: 'u'.repeat(257) }],
  ['a NUL in userId', { ...valid, userId: 'u\0' }],
  ['no itemIds', { userId: 'u' }],
  ['itemIds not an array', { ...valid, itemIds: 'i-1' }],
  ['no candidates', { ...valid, itemIds: [] }],
  ['1,001 candidates', { ...valid, itemIds: ids(1001) }],
  ['a number among the ids', { ...valid, itemIds: ['i-1', 2] }],
  ['an empty id', { ...valid, itemIds: ['i-1', ''] }],
  ['an id of 257 characters', { ...valid, itemIds: ['i'.repeat(257)] }],
  ['a NUL in an id', { ...valid, itemIds: ['i\0'] }],
  ['a repeated id', { ...valid, itemIds: ['i-1', 'i-1'] }],
  ['context an array', { ...valid, context: ['mobile'] }],
  ['context a string', { ...valid, context: 'mobile' }],
  ['a nested context value', { ...valid, context: { device: { os: 'ios' } } }],
  ['a null context value', { ...valid, context: { device: null } }],
  ['weights a number', { ...valid, objectiveWeights: 1 }],
  ['a string weight', { ...valid, objectiveWeights: { click: '1' } }],
  ['a boolean weight', { ...valid, objectiveWeights: { click: true } }],
  ['a lone surrogate in userId', { ...valid, userId: 'u\uD800' }],
  ['a lone surrogate in an id', { ...valid, itemIds: ['i\uDC00'] }],
  ['a paired surrogate in an id', { ...valid, itemIds: ['i-😀'] }],
  ['a NUL in a context key', { ...valid, context: { 'dev\0ice': 'mobile' } }],
  ['a lone surrogate in a context value', { ...valid, context: { device: 'mob\uD800' } }],
  ['a weight at the bound', { ...valid, objectiveWeights: { click: -1e6 } }],
  ['a weight past the bound', { ...valid, objectiveWeights: { click: 1e7 } }],
  ['a NUL in a weight key', { ...valid, objectiveWeights: { 'cl\0ick': 1 } }],
  ['a fusion rule', { ...valid, fusion: { type: 'product', exponents: { click: 1 } } }],
  ['a NUL in a fusion key', { ...valid, fusion: { type: 'sum', weights: { 'cl\0ick': 1 } } }],
  ['a lone surrogate in a fusion value', { ...valid, fusion: { type: 'product\uDC00' } }],
  ['fusion an array', { ...valid, fusion: [{ type: 'sum' }] }],
  ['fusion a string', { ...valid, fusion: 'sum' }],
  ['a list in context (a sequence feature)', { ...valid, context: { recent: ['i-1', 'i-9'] } }],
  ['a list of numbers in context', { ...valid, context: { recent: [1, 2] } }],
  ['a list of 1,025 strings in context', { ...valid, context: { recent: ids(1025) } }],
  ['a context string of 1,024 characters', { ...valid, context: { device: 'd'.repeat(1024) } }],
  ['a context string of 1,025 characters', { ...valid, context: { device: 'd'.repeat(1025) } }],
  ['a context list element of 1,025 characters', { ...valid, context: { recent: ['i'.repeat(1025)] } }],
  ['a context key of 129 characters', { ...valid, context: { ['k'.repeat(129)]: 1 } }],
  ['256 context keys', { ...valid, context: Object.fromEntries(ids(256).map((k) => [k, 1])) }],
  ['257 context keys', { ...valid, context: Object.fromEntries(ids(257).map((k) => [k, 1])) }],
  ['explain a string', { ...valid, explain: 'true' }],
  ['explain a number', { ...valid, explain: 1 }],
];

describe('isValidScoreRequest, against the DTO decorators (class-validator)', () => {
  it.each(bodies)('gives the same verdict for %s', async (_name, body) => {
    expect(isValidScoreRequest(body)).toBe(await acceptedByDecorators(body));
  });

  it('leaves a fusion of more keys than any route takes to the slow path, which refuses it', () => {
    const weights = Object.fromEntries(ids(95_000).map((k) => [k, 1]));
    expect(isValidScoreRequest({ ...valid, fusion: { type: 'sum', weights } })).toBe(false);
  });

  it('refuses a context number beyond ±1e18, as the decorators do: a float32 overflow made every score NaN', async () => {
    const body = { ...valid, context: { price: 1e39 } };
    expect(isValidScoreRequest(body)).toBe(false);
    expect(await acceptedByDecorators(body)).toBe(false);
  });

  it('never accepts what the decorators refuse: an id of 256 emoji (512 code units) only takes the slow path', async () => {
    const body = { userId: '😀'.repeat(256), itemIds: ['i-1'] };
    expect(isValidScoreRequest(body)).toBe(false);
    expect(await acceptedByDecorators(body)).toBe(true);
  });
});
