import { ConsoleLogger, filterLogLevels } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { WorkerModule } from './worker.module';

async function bootstrap(): Promise<void> {
  // Logs are held back until the validated config says which levels to print; abortOnError off so that a bad
  // configuration (or Redis refusing its credentials) ends in the message below rather than a core dump.
  const app = await NestFactory.createApplicationContext(WorkerModule, { bufferLogs: true, abortOnError: false });
  // Colours on a terminal only: a log file or a collector got ANSI escapes in every line.
  app.useLogger(
    new ConsoleLogger({
      logLevels: filterLogLevels(`>=${app.get<AppConfig>(APP_CONFIG).LOG_LEVEL}`),
      colors: process.stdout.isTTY === true,
    }),
  );
  // On SIGTERM/SIGINT Nest closes the app (the processor lets running jobs finish first) and re-raises the signal.
  // Bull's Redis connections keep the process alive meanwhile.
  app.enableShutdownHooks();
}

bootstrap().catch((error: Error) => {
  process.stderr.write(`worker failed to start: ${error.message}\n`);
  process.exit(1);
});
