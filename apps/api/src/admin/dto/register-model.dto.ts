import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBase64, IsNotEmpty, IsString, MaxLength } from 'class-validator';

import { IsPostgresText, IsVersionId } from '../../platform/postgres-text.validator';
import { IsObjectiveWeights, IsOmittable } from '../../platform/validation';
import { OBJECTIVE_WEIGHTS_SCHEMA } from './model-version.dto';

export class RegisterModelDto {
  @ApiProperty({
    description: 'The model artifact written by `npm run cli -- train` (model.mmoe), base64-encoded.',
    format: 'byte',
  })
  @IsNotEmpty()
  @IsBase64()
  artifact!: string;

  @ApiPropertyOptional({
    ...OBJECTIVE_WEIGHTS_SCHEMA,
    description: "Default blend of this version's task scores; tasks left out keep their spec weight.",
  })
  @IsOmittable()
  @IsObjectiveWeights()
  objectiveWeights?: Record<string, number>;

  @ApiPropertyOptional({ maxLength: 1000, example: 'retrained on March data' })
  @IsOmittable()
  @IsString()
  @MaxLength(1000)
  @IsPostgresText()
  note?: string;

  @ApiPropertyOptional({ description: 'The version this one was derived from.', minimum: 1 })
  @IsOmittable()
  @IsVersionId()
  parentVersionId?: number;
}
