import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export type CheckStatus = 'up' | 'down';

export class ReadinessChecksDto {
  @ApiProperty({ enum: ['up', 'down'] })
  postgres!: CheckStatus;

  @ApiProperty({ enum: ['up', 'down'] })
  redis!: CheckStatus;

  @ApiProperty({ enum: ['up', 'down'], description: 'A production model is loaded in this process.' })
  model!: CheckStatus;

  @ApiPropertyOptional({
    enum: ['up', 'down'],
    description:
      'Only with DATABASE_READ_URL: down while the replica is unreachable or lagging (its reads go to the primary).',
  })
  replica?: CheckStatus;
}

export class ReadinessDto {
  @ApiProperty({
    enum: ['ok', 'degraded', 'unavailable'],
    description:
      'degraded: Redis is down (scoring reads features from Postgres, training control answers 503), or the read ' +
      'replica is not used (its reads go to the primary).',
  })
  status!: 'ok' | 'degraded' | 'unavailable';

  @ApiProperty({ type: ReadinessChecksDto })
  checks!: ReadinessChecksDto;
}
