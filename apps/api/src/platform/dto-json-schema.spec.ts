import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

import { dtoJsonSchema } from './dto-json-schema';

class PartDto {
  @ApiProperty({ enum: ['a', 'b'] })
  kind!: 'a' | 'b';
}

class WholeDto {
  @ApiProperty()
  name!: string;

  @ApiProperty({ type: 'integer' })
  count!: number;

  @ApiProperty()
  share!: number;

  @ApiPropertyOptional({ enum: [true] })
  flag?: true;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' } })
  byName!: Record<string, number>;

  @ApiProperty({ type: PartDto })
  part!: PartDto;

  @ApiPropertyOptional({ type: [PartDto] })
  parts?: PartDto[];
}

describe('dtoJsonSchema', () => {
  it('reads types, nesting, arrays and required fields from the OpenAPI metadata', () => {
    const part = { type: 'object', required: ['kind'], properties: { kind: { type: 'string', enum: ['a', 'b'] } } };
    expect(dtoJsonSchema(WholeDto)).toEqual({
      type: 'object',
      required: ['name', 'count', 'share', 'byName', 'part'],
      properties: {
        name: { type: 'string' },
        count: { type: 'integer' },
        share: { type: 'number' },
        flag: { type: 'boolean', enum: [true] },
        byName: { type: 'object', additionalProperties: { type: 'number' } },
        part,
        parts: { type: 'array', items: part },
      },
    });
  });
});
