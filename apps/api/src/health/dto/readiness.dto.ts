import { ApiProperty } from '@nestjs/swagger';

export type CheckStatus = 'up' | 'down';

export class ReadinessChecksDto {
  @ApiProperty({ enum: ['up', 'down'] })
  postgres!: CheckStatus;

  @ApiProperty({ enum: ['up', 'down'] })
  redis!: CheckStatus;

  @ApiProperty({ enum: ['up', 'down'], description: 'A production model is loaded in this process.' })
  model!: CheckStatus;
}

export class ReadinessDto {
  @ApiProperty({
    enum: ['ok', 'degraded', 'unavailable'],
    description: 'degraded: Redis is down; scoring reads features from Postgres, training control answers 503.',
  })
  status!: 'ok' | 'degraded' | 'unavailable';

  @ApiProperty({ type: ReadinessChecksDto })
  checks!: ReadinessChecksDto;
}
