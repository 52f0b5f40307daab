import { ConfigModule } from '@app/config';
import { Module } from '@nestjs/common';
import { TfjsBackendService } from './tfjs-backend.service';

@Module({
  imports: [ConfigModule],
  providers: [TfjsBackendService],
})
export class WorkerModule {}
