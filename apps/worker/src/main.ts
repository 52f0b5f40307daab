import { APP_CONFIG, type AppConfig } from '@app/config';
import { filterLogLevels } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WorkerModule } from './worker.module';

async function bootstrap(): Promise<void> {
  // Logs are held back until the validated config says which levels to print.
  const app = await NestFactory.createApplicationContext(WorkerModule, { bufferLogs: true });
  app.useLogger(filterLogLevels(`>=${app.get<AppConfig>(APP_CONFIG).LOG_LEVEL}`));
  app.enableShutdownHooks();
  // Nothing else holds the event loop open yet (no HTTP server, no queue connection), so without this handle the
  // worker would exit right after booting; on SIGTERM/SIGINT Nest closes the app and re-raises the signal.
  setInterval(() => undefined, 2 ** 31 - 1);
}

void bootstrap();
