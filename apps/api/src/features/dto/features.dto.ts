import { ApiProperty } from '@nestjs/swagger';

import type { FeatureMap } from '@app/db';

import { IsEntityId, MAX_ID_LENGTH } from '../../platform/postgres-text.validator';
import { ListOf, MAX_LIST_LENGTH, MAX_TEXT_VALUE_LENGTH } from '../../platform/validation';
import { IsFeatureMap, MAX_FEATURE_NAME_LENGTH, MAX_FEATURES } from './feature-map.validator';

export const MAX_BULK_ENTITIES = 10_000;

export class EntityIdParamsDto {
  @ApiProperty({ minLength: 1, maxLength: MAX_ID_LENGTH, example: 'u-42' })
  @IsEntityId()
  id!: string;
}

export class PutFeaturesDto {
  @ApiProperty({
    description:
      `Up to ${MAX_FEATURES} features by name (1–${MAX_FEATURE_NAME_LENGTH} characters); they replace the stored ones as a whole. ` +
      'null or an absent name is scored with the default (training mean / unknown category / empty list). ' +
      `Sequence features (a history, tags) hold a list of up to ${MAX_LIST_LENGTH} strings; ` +
      `a string (value or list element) has at most ${MAX_TEXT_VALUE_LENGTH} characters.`,
    type: 'object',
    additionalProperties: {
      oneOf: [
        { type: 'number' },
        { type: 'string' },
        { type: 'boolean' },
        { type: 'array', items: { type: 'string' }, maxItems: MAX_LIST_LENGTH },
      ],
      nullable: true,
    },
    example: { age: 31, country: 'fr', premium: true, recent_items: ['i-7', 'i-12'] },
  })
  @IsFeatureMap()
  features!: FeatureMap;
}

export class EntityFeaturesDto extends PutFeaturesDto {
  @ApiProperty({ minLength: 1, maxLength: MAX_ID_LENGTH, example: 'u-42' })
  @IsEntityId()
  id!: string;
}

export class BulkPutFeaturesDto {
  @ApiProperty({
    type: [EntityFeaturesDto],
    minItems: 1,
    maxItems: MAX_BULK_ENTITIES,
    description: 'Ids must be unique within a call.',
  })
  @ListOf(() => EntityFeaturesDto, MAX_BULK_ENTITIES)
  entities!: EntityFeaturesDto[];
}

export class FeaturesWrittenDto {
  @ApiProperty({ description: 'Entities whose features were stored (created or replaced).', example: 1 })
  written!: number;
}
