import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';

export class ShadowDto {
  @ApiProperty({
    minimum: 0,
    maximum: 100,
    example: 20,
    description: 'Share of requests the version also scores in the background; its answers are logged, never served.',
  })
  @IsInt()
  @Min(0)
  @Max(100)
  percent!: number;
}
