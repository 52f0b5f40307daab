import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

import { dtoJsonWriter, type Source } from './dto-json.writer';

class RuleDto {
  @ApiProperty({ enum: ['sum', 'product'] })
  type!: 'sum' | 'product';

  @ApiProperty()
  label!: string;
}

class RowDto {
  @ApiProperty()
  id!: string;

  @ApiProperty()
  score!: number;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' } })
  scores!: Record<string, number>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'number' } })
  extra?: Record<string, number>;

  @ApiPropertyOptional({ enum: [true] })
  flagged?: true;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'array', items: { type: 'number' } } })
  weights?: Record<string, number[]>;
}

/** The shapes of ScoreResponseDto: strings, an integer, enums, nested DTOs, an array of DTOs, an optional flag. */
class ResponseDto {
  @ApiProperty()
  id!: string;

  @ApiProperty({ type: 'integer' })
  version!: number;

  @ApiProperty({ enum: ['production', 'canary'] })
  role!: 'production' | 'canary';

  @ApiProperty({ type: RuleDto })
  rule!: RuleDto;

  @ApiProperty({ type: [RowDto] })
  rows!: RowDto[];

  @ApiPropertyOptional({ type: RuleDto })
  fallback?: RuleDto;

  @ApiPropertyOptional({ enum: [true] })
  partial?: true;
}

const write = dtoJsonWriter(ResponseDto);

/** Strings JSON must escape, or writes as UTF-8 of 2, 3 and 4 bytes, or as a \u escape (a lone surrogate). */
const STRINGS = ['plain', '', 'say "hi"', 'back\\slash', 'new\nline\ttab\r', '\u0001\u001f\u007f', 'é', '日本', '😀'];
const ODD_STRINGS = ['\ud800', 'x\udc00y', '\u2028\u2029', '</script>', '\\u0022'];
/** What JSON.stringify writes as null (non-finite), as 0 (-0), in exponent form, and at the ends of a double. */
const NUMBERS = [0.31, 1, -2.5, NaN, Infinity, -Infinity, -0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, 2 ** 53 + 2];

interface Row {
  id: string;
  score: number;
  scores: Record<string, number>;
  extra?: Record<string, number>;
  flagged?: boolean;
  weights?: Record<string, number[]>;
}

/** The response as JSON.stringify writes its objects, and the same response as the writer takes it. */
function both(
  rows: Row[],
  order: number[],
  head: Omit<ResponseDto, 'rows'>,
): { expected: Buffer; source: Source<ResponseDto> } {
  const taskKeys = Object.keys(rows[0]?.scores ?? {});
  const extraKeys = rows[0]?.extra && Object.keys(rows[0].extra);
  const weightKeys = rows[0]?.weights && Object.keys(rows[0].weights);
  const width = weightKeys ? rows[0].weights![weightKeys[0]].length : 0;
  const dto: ResponseDto = {
    ...head,
    rows: order.map((i): RowDto => {
      const { id, score, scores, extra, flagged, weights } = rows[i];
      return {
        id,
        score,
        scores,
        ...(extra && { extra }),
        ...(flagged && { flagged: true }),
        ...(weights && { weights }),
      };
    }),
  };
  // JSON.stringify writes the fields in the DTO's declared order only when the object has them in that order.
  const ordered = {
    id: dto.id,
    version: dto.version,
    role: dto.role,
    rule: dto.rule,
    rows: dto.rows,
    ...(dto.fallback && { fallback: dto.fallback }),
    ...(dto.partial && { partial: dto.partial }),
  };
  const source: Source<ResponseDto> = {
    ...head,
    fallback: head.fallback,
    partial: head.partial,
    rows: {
      order,
      columns: {
        id: rows.map((r) => r.id),
        score: Float64Array.from(rows, (r) => r.score),
        scores: { keys: taskKeys, columns: taskKeys.map((k) => rows.map((r) => r.scores[k])) },
        extra: extraKeys && { keys: extraKeys, columns: extraKeys.map((k) => rows.map((r) => r.extra![k])) },
        flagged: Uint8Array.from(rows, (r) => (r.flagged ? 1 : 0)),
        weights: weightKeys && {
          keys: weightKeys,
          columns: weightKeys.map((k) => ({ values: rows.flatMap((r) => r.weights![k]), width })),
        },
      },
    },
  };
  return { expected: Buffer.from(JSON.stringify(ordered)), source };
}

/** Bytes compared as latin1 text: any byte that differs shows, and the diff stays readable. */
const bytes = (b: Buffer) => b.toString('latin1');

const head: Omit<ResponseDto, 'rows'> = {
  id: 'r-"1"',
  version: 7,
  role: 'canary',
  rule: { type: 'sum', label: 'é' },
};

function rowsOf(count: number, optional: { extra: boolean; weights: boolean }): Row[] {
  const strings = [...STRINGS, ...ODD_STRINGS];
  return Array.from({ length: count }, (_, i) => ({
    id: `${strings[i % strings.length]}-${i}`,
    score: NUMBERS[i % NUMBERS.length],
    scores: { click: NUMBERS[(i + 1) % NUMBERS.length], 'say "hi"': i / 3, 日本: -i },
    ...(optional.extra && { extra: { 'a\nb': NUMBERS[(i + 2) % NUMBERS.length] } }),
    flagged: i % 3 === 0,
    ...(optional.weights && {
      weights: { click: [0.25, NUMBERS[(i + 3) % NUMBERS.length]], 'say "hi"': [1, 0] },
    }),
  }));
}

describe('dtoJsonWriter', () => {
  it.each([
    [
      'every optional field present',
      { extra: true, weights: true },
      { fallback: { type: 'product', label: '' }, partial: true },
    ],
    ['every optional field absent', { extra: false, weights: false }, {}],
    ['some optional fields present', { extra: false, weights: true }, { partial: true }],
  ] as const)('writes the bytes JSON.stringify writes of the DTO, %s', (_name, optional, more) => {
    const rows = rowsOf(STRINGS.length + ODD_STRINGS.length, optional);
    const order = rows.map((_, i) => i).reverse();
    const { expected, source } = both(rows, order, { ...head, ...more });
    expect(bytes(write(source))).toBe(bytes(expected));
  });

  it('escapes every string as JSON.stringify does, in every place a string is written', () => {
    for (const s of [...STRINGS, ...ODD_STRINGS]) {
      const rows = [{ id: s, score: 1, scores: {} }];
      const { expected, source } = both(rows, [0], { ...head, id: s, rule: { type: 'product', label: s } });
      expect(bytes(write(source))).toBe(bytes(expected));
    }
  });

  it('writes a non-finite number as null and -0 as 0, as JSON.stringify does', () => {
    const rows = NUMBERS.map((x, i) => ({ id: `${i}`, score: x, scores: { x }, weights: { x: [x, -x] } }));
    const { expected, source } = both(
      rows,
      rows.map((_, i) => i),
      head,
    );
    expect(bytes(write(source))).toBe(bytes(expected));
    expect(expected.toString()).toContain('"score":null');
  });

  it('writes no items as [], and a response larger than its first buffer whole', () => {
    const none = both([], [], head);
    expect(bytes(write(none.source))).toBe(bytes(none.expected));
    const rows = rowsOf(3_000, { extra: true, weights: true }).map((r, i) => ({
      ...r,
      id: `${'日'.repeat(i % 40)}${r.id}`,
    }));
    const big = both(
      rows,
      rows.map((_, i) => (i * 7) % rows.length),
      head,
    );
    expect(big.expected.length).toBeGreaterThan(256 * 1024);
    expect(bytes(write(big.source))).toBe(bytes(big.expected));
  });

  it('makes room for an item with its strings: a long id at the end of the buffer leaves room for the fields after it', () => {
    // The id's closing quote just before the first buffer's end (64 KiB), in a writer whose buffer has not grown yet:
    // an id that made room for itself alone used the room of the score after it.
    const fresh = (): typeof write => {
      let writer: typeof write | undefined;
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { dtoJsonWriter } = require('./dto-json.writer') as typeof import('./dto-json.writer');
        writer = dtoJsonWriter(ResponseDto);
      });
      return writer!;
    };
    const row = (id: string) => ({ id, score: 0.5, scores: { click: 0.25, like: 0.75 } });
    const probe = both([row('ID')], [0], head).expected.toString();
    const before = probe.indexOf('ID'); // bytes ahead of the id
    // Every 4th byte of the 48 before the end: the fields after the id take 49 (a module each, 75 ms).
    for (let end = 65_536 - 48; end <= 65_536; end += 4) {
      const { expected, source } = both([row('x'.repeat(end - before - 1))], [0], head);
      expect(bytes(fresh()(source))).toBe(bytes(expected));
    }
  });

  it('refuses a response that breaks its schema, and the next response is whole', () => {
    const { expected, source } = both(rowsOf(4, { extra: false, weights: false }), [0, 1, 2, 3], head);
    expect(() => write({ ...source, id: undefined as never })).toThrow('ResponseDto.id is required');
    expect(() => write({ ...source, id: 7 as never })).toThrow('ResponseDto.id is not a string');
    expect(() => write({ ...source, version: 7.5 })).toThrow('ResponseDto.version is not an integer');
    expect(() => write({ ...source, version: NaN })).toThrow('ResponseDto.version is not an integer');
    expect(() => write({ ...source, role: 'shadow' as never })).toThrow(
      'ResponseDto.role is "shadow", not one of ["production","canary"]',
    );
    expect(() => write({ ...source, rule: { type: 'sum', label: undefined as never } })).toThrow(
      'ResponseDto.rule.label is required',
    );
    const columns = { ...source.rows.columns, score: undefined as never };
    expect(() => write({ ...source, rows: { ...source.rows, columns } })).toThrow(
      'ResponseDto.rows[].score is required',
    );
    expect(bytes(write(source))).toBe(bytes(expected));
  });

  describe('fails loudly, when it is first used, for a DTO field it cannot write', () => {
    class PlainNumberDto {
      @ApiProperty()
      id!: string;

      @ApiProperty()
      share!: number;
    }
    class PlainBooleanDto {
      @ApiProperty()
      id!: string;

      @ApiProperty()
      ok!: boolean;
    }
    class StringsDto {
      @ApiProperty()
      id!: string;

      @ApiProperty({ type: [String] })
      tags!: string[];
    }
    class OptionalFirstDto {
      @ApiPropertyOptional()
      note?: string;

      @ApiProperty()
      id!: string;
    }
    class IntegerItemDto {
      @ApiProperty()
      id!: string;

      @ApiProperty({ type: 'integer' })
      rank!: number;
    }
    class BooleanItemDto {
      @ApiProperty()
      id!: string;

      @ApiPropertyOptional()
      seen?: boolean;
    }
    class EnumItemDto {
      @ApiProperty()
      id!: string;

      @ApiProperty({ enum: ['a', 'b'] })
      kind!: 'a' | 'b';
    }
    class RequiredFlagItemDto {
      @ApiProperty()
      id!: string;

      @ApiProperty({ enum: [true] })
      always!: true;
    }
    class FlagsRecordItemDto {
      @ApiProperty()
      id!: string;

      @ApiProperty({ type: 'object', additionalProperties: { type: 'boolean', enum: [true] } })
      flags!: Record<string, true>;
    }
    const listOf = (item: new () => unknown) => {
      class ListDto {
        @ApiProperty()
        id!: string;

        @ApiProperty({ type: [item] })
        items!: unknown[];
      }
      return ListDto;
    };

    it.each([
      [
        'a plain number',
        PlainNumberDto,
        'PlainNumberDto.share has a schema the response writer cannot write: {"type":"number"}',
      ],
      [
        'a plain boolean',
        PlainBooleanDto,
        'PlainBooleanDto.ok has a schema the response writer cannot write: {"type":"boolean"}',
      ],
      ['an array of strings', StringsDto, 'StringsDto.tags has a schema the response writer cannot write'],
      ['an optional first field', OptionalFirstDto, 'OptionalFirstDto must start with a required field to be written'],
      [
        "an item's integer",
        listOf(IntegerItemDto),
        'ListDto.items[].rank has a schema the response writer cannot write from a column',
      ],
      [
        "an item's boolean",
        listOf(BooleanItemDto),
        'ListDto.items[].seen has a schema the response writer cannot write from a column',
      ],
      [
        "an item's enum",
        listOf(EnumItemDto),
        'ListDto.items[].kind is an enum: an item field the response writer cannot write',
      ],
      [
        "an item's required flag",
        listOf(RequiredFlagItemDto),
        'ListDto.items[].always is a flag, which an item may leave out: not required',
      ],
      [
        "an item's record of flags",
        listOf(FlagsRecordItemDto),
        'ListDto.items[].flags has a schema the response writer cannot write from a column',
      ],
    ])('%s', (_name, dto, message) => {
      const writer = dtoJsonWriter(dto as new () => unknown);
      expect(() => writer({ id: 'x' } as never)).toThrow(message);
      // Not only the first time: every response of that DTO is refused.
      expect(() => writer({ id: 'x' } as never)).toThrow(message);
    });
  });
});
