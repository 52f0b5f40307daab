import { IsOptional, IsString } from 'class-validator';

import { InvalidFieldsError, type FieldError } from '@app/common';

import { createValidationPipe } from './validation';

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

  it('accepts paired surrogates (emoji) and other text', async () => {
    expect(await pipe.transform({ note: 'ok 😀 é' }, { type: 'body', metatype: NoteDto })).toEqual({ note: 'ok 😀 é' });
  });
});
