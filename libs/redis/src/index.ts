export * from './redis.module';
export * from './redis-client';
export * from './redis-unavailable';
export * from './redis-options';
export * from './redis-credentials';
