import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { reconnectSoon } from './redis-options';

/** The shared command connection: `@Inject(REDIS) redis: Redis`. */
export const REDIS = Symbol('REDIS');

/**
 * The feature cache's own connection, made to fail fast rather than wait: no offline queue (a command while
 * disconnected fails at once), a command timeout. The scoring path reads Postgres instead whenever it fails.
 */
export const CACHE_REDIS = Symbol('CACHE_REDIS');
const CACHE_CLIENT_OPTIONS: RedisOptions = { enableOfflineQueue: false, commandTimeout: 500, maxRetriesPerRequest: 0 };

/**
 * Makes extra connections (a subscriber cannot issue commands), each reconnecting at most 500 ms apart so that it is
 * back soon after Redis is; reports each connection's outages once per change through the app's logger (an error
 * event would otherwise be printed raw by ioredis at every reconnect attempt) and closes every connection at shutdown.
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly open: Redis[] = [];

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  create(name: string, options: RedisOptions = {}): Redis {
    const client = new Redis(this.config.REDIS_URL, {
      connectionName: name,
      maxRetriesPerRequest: 3,
      retryStrategy: reconnectSoon,
      ...options,
    });
    let down = false;
    client.on('error', (error: Error) => {
      if (down) return;
      down = true;
      this.logger.warn(`connection "${name}" unavailable (${error.message}); retrying`);
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      this.logger.log(`connection "${name}" is back`);
    });
    this.open.push(client);
    return client;
  }

  /** Whether the shared command connection is up: what routes that cannot work without Redis check first. */
  available(): boolean {
    return this.open.find((c) => c.options.connectionName === 'commands')?.status === 'ready';
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.open.map((c) => c.quit().catch(() => c.disconnect())));
  }
}

@Global()
@Module({
  providers: [
    RedisConnections,
    { provide: REDIS, inject: [RedisConnections], useFactory: (c: RedisConnections) => c.create('commands') },
    {
      provide: CACHE_REDIS,
      inject: [RedisConnections],
      // Without an offline queue, a command sent before the first connect fails: wait for it (not for an outage).
      useFactory: async (c: RedisConnections) => {
        const client = c.create('feature-cache', CACHE_CLIENT_OPTIONS);
        await new Promise((resolve) => {
          client.once('ready', resolve);
          setTimeout(resolve, 2000).unref();
        });
        return client;
      },
    },
  ],
  exports: [REDIS, CACHE_REDIS, RedisConnections],
})
export class RedisModule {}
