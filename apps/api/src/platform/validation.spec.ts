import { IsInt, IsOptional, IsString, Max, Min, validateSync } from 'class-validator';

import { InvalidFieldsError, type FieldError } from '@app/common';

import { createValidationPipe, IsUniqueStrings } from './validation';

class NoteDto {
  @IsOptional()
  @IsString()
  note?: string;
}

const pipe = createValidationPipe();

async function refusal(value: unknown, type: 'body' | 'query' | 'param' = 'body'): Promise<FieldError[]> {
  const error: unknown = await pipe.transform(value, { type, metatype: NoteDto }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InvalidFieldsError)) throw new Error(`expected a 400 for ${JSON.stringify(value)}`);
  return error.errors;
}

describe('the validation pipe: the rules of every route', () => {
  it('takes no body as {}, but refuses a body that is not a JSON object', async () => {
    expect(await pipe.transform(undefined, { type: 'body', metatype: NoteDto })).toEqual({});
    for (const body of [null, [], 'note', 1, true])
      expect(await refusal(body)).toEqual([{ field: 'body', message: 'body must be a JSON object' }]);
  });

  it('refuses NUL and lone surrogates in any string or key at any depth, naming where (before the DTO)', async () => {
    // `junk` is no field of the DTO: the text rule is the route's, whatever the DTO declares.
    expect(await refusal({ junk: { a: [1, 'x\0'] } })).toEqual([
      { field: 'junk.a.1', message: 'junk.a.1 must not contain NUL characters' },
    ]);
    expect(await refusal({ junk: { ['k\uD800']: 1 } })).toEqual([
      { field: 'junk', message: 'keys of junk must not contain unpaired UTF-16 surrogates' },
    ]);
    expect(await refusal({ ['\0']: 1 })).toEqual([
      { field: 'body', message: 'keys of body must not contain NUL characters' },
    ]);
    expect(await refusal({ note: '\uDC00' }, 'query')).toEqual([
      { field: 'note', message: 'note must not contain unpaired UTF-16 surrogates' },
    ]);
    expect(await refusal({ ['n\0']: 'x' }, 'param')).toEqual([
      { field: 'path', message: 'keys of path must not contain NUL characters' },
    ]);
  });

  it('refuses an object of more keys, or longer ones, than any route takes, before the DTO reads any', async () => {
    const many = Object.fromEntries(Array.from({ length: 95_000 }, (_, i) => [`k${i}`, 1]));
    expect(await refusal({ note: 'x', ...many })).toEqual([
      { field: 'body', message: 'body must have at most 1024 keys, got 95001' },
    ]);
    expect(await refusal({ junk: { a: many } })).toEqual([
      { field: 'junk.a', message: 'junk.a must have at most 1024 keys, got 95000' },
    ]);
    expect(await refusal({ ['k'.repeat(257)]: 1 })).toEqual([
      { field: 'body', message: 'keys of body must be at most 256 characters long' },
    ]);
    // Arrays are lists of values, not keys: a long one is the DTO's to bound.
    expect(await refusal({ junk: Array.from({ length: 2000 }, () => 1) })).toEqual([
      { field: 'junk', message: 'junk is not a field' },
    ]);
  });

  it('refuses keys named like built-in object properties, which class-transformer would drop without a word', async () => {
    expect(await refusal({ note: 'x', toString: 1 })).toEqual([
      {
        field: 'toString',
        message: 'toString is not a field (a key named like a built-in object property is refused)',
      },
    ]);
    expect(await refusal({ junk: { a: { constructor: {} } } })).toEqual([
      {
        field: 'junk.a.constructor',
        message: 'junk.a.constructor is not a field (a key named like a built-in object property is refused)',
      },
    ]);
  });

  it('says a field is unknown, missing, or of the wrong type, in one sentence each', async () => {
    class PercentDto {
      @IsInt()
      @Min(0)
      @Max(100)
      percent!: number;
    }
    const errors = async (value: unknown) =>
      pipe.transform(value, { type: 'body', metatype: PercentDto }).then(
        () => [],
        (e: InvalidFieldsError) => e.errors,
      );
    expect(await errors({ percent: '10' })).toEqual([
      { field: 'percent', message: 'percent must be an integer number' },
    ]);
    expect(await errors({ percent: 101 })).toEqual([
      { field: 'percent', message: 'percent must not be greater than 100' },
    ]);
    expect(await errors({})).toEqual([{ field: 'percent', message: 'percent is required' }]);
  });

  it('accepts paired surrogates (emoji) and other text', async () => {
    expect(await pipe.transform({ note: 'ok 😀 é' }, { type: 'body', metatype: NoteDto })).toEqual({ note: 'ok 😀 é' });
  });
});

describe('IsUniqueStrings', () => {
  class IdsDto {
    @IsUniqueStrings(1, 4)
    ids!: unknown;
  }

  /** The decorator's own verdict (the pipe refuses text that Postgres cannot store before any DTO). */
  const problem = (ids: unknown) => validateSync(Object.assign(new IdsDto(), { ids })).map((e) => e.constraints);

  it('accepts distinct strings of the lengths given', () => {
    expect(problem(['a', 'bb', 'dddd'])).toEqual([]);
    expect(problem([])).toEqual([]);
  });

  it('names the first problem of the list: a repeat, or an element that is no storable string of those lengths', () => {
    const refused = (message: string) => [{ isUniqueStrings: `ids ${message}` }];
    expect(problem('a')).toEqual(refused('must be an array'));
    expect(problem(['a', 'b', 'a', 'b'])).toEqual(refused('must not contain duplicates ("a" repeats)'));
    // A repeat before a bad element is named, not the element; a bad element before a repeat is.
    expect(problem(['a', 'a', 7])).toEqual(refused('must not contain duplicates ("a" repeats)'));
    expect(problem(['a', 7, 'a'])).toEqual(refused('must contain only strings (element 1 is not)'));
    expect(problem(['a', 'toolong', 'a'])).toEqual(
      refused('must contain strings of 1–4 characters (element 1 is not)'),
    );
    expect(problem(['a', '', 'a'])).toEqual(refused('must contain strings of 1–4 characters (element 1 is not)'));
    expect(problem(['a', 'b', 'a\0', 'b'])).toEqual(
      refused('must contain storable text (element 2 must not contain NUL characters)'),
    );
    expect(problem(['a', 'b', 'b', 'a\0'])).toEqual(refused('must not contain duplicates ("b" repeats)'));
    // Equal strings, not the same one: a string built at run time repeats a literal.
    expect(problem(['abcd', 'a', ['ab', 'cd'].join('')])).toEqual(
      refused('must not contain duplicates ("abcd" repeats)'),
    );
  });
});
