import cluster from 'node:cluster';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';

import { APP_CONFIG, loadConfig, type AppConfig } from '@app/config';

import { AppModule } from './app.module';
import { configureApp } from './app.setup';
import { superviseApiProcesses } from './platform/api-cluster';
import { APP_OPTIONS, createFastifyAdapter } from './platform/fastify-adapter';
import { JsonLogger } from './platform/json-logger';

async function bootstrap(): Promise<void> {
  // Logs are held back until pino, configured from the validated config, takes them; abortOnError off so that a
  // bad configuration ends in the message below rather than a core dump.
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, createFastifyAdapter(), {
    ...APP_OPTIONS,
    bufferLogs: true,
    abortOnError: false,
  });
  const logger = app.get(JsonLogger);
  app.useLogger(logger);
  configureApp(app);
  const config = app.get<AppConfig>(APP_CONFIG);
  await app.listen(config.API_PORT, config.API_HOST);
  logger.log(`listening on ${await app.getUrl()}`, 'Api');
}

function main(): Promise<void> {
  if (!cluster.isPrimary) return bootstrap();
  // The primary validates the configuration once, so that a bad one fails before any process is forked.
  const processes = loadConfig().API_PROCESSES;
  if (processes === 1) return bootstrap();
  superviseApiProcesses(processes);
  return Promise.resolve();
}

main().catch((error: Error) => {
  process.stderr.write(`api failed to start: ${error.message}\n`);
  process.exit(1);
});
