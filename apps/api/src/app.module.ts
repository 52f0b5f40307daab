import { ConfigModule } from '@app/config';
import { Module } from '@nestjs/common';
import { HealthController } from './health/health.controller';

@Module({
  imports: [ConfigModule],
  controllers: [HealthController],
})
export class AppModule {}
