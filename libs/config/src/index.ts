export { loadConfig, type AppConfig, type RedisNode } from './app-config';
export { APP_CONFIG, ConfigModule } from './config.module';
export { CRON_TIMEZONE, cronIntervalProblem, cronProblem } from './cron';
