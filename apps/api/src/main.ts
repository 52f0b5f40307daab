import { APP_CONFIG, type AppConfig } from '@app/config';
import { Logger, filterLogLevels } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { configureApp } from './app.setup';

async function bootstrap(): Promise<void> {
  // Logs are held back until the validated config says which levels to print.
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), { bufferLogs: true });
  const config = app.get<AppConfig>(APP_CONFIG);
  app.useLogger(filterLogLevels(`>=${config.LOG_LEVEL}`));
  configureApp(app);
  await app.listen(config.API_PORT, config.API_HOST);
  new Logger('Api').log(`listening on ${await app.getUrl()}`);
}

void bootstrap();
