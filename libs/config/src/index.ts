export { loadConfig, type AppConfig } from './app-config';
export { APP_CONFIG, ConfigModule } from './config.module';
