import { Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';

import { APP_CONFIG, type AppConfig } from '@app/config';

/** The shared command connection: `@Inject(REDIS) redis: Redis`. */
export const REDIS = Symbol('REDIS');

/** Makes extra connections (a subscriber cannot issue commands) and closes every connection at shutdown. */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly open: Redis[] = [];

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  create(name: string): Redis {
    const client = new Redis(this.config.REDIS_URL, { connectionName: name, maxRetriesPerRequest: 3 });
    this.open.push(client);
    return client;
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
  ],
  exports: [REDIS, RedisConnections],
})
export class RedisModule {}
