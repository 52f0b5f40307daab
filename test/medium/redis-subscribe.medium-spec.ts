import { Test, type TestingModule } from '@nestjs/testing';
import Redis from 'ioredis';

import { APP_CONFIG, ConfigModule, loadConfig } from '@app/config';
import { RedisConnections, RedisModule, RedisUnavailableError } from '@app/redis';

import { startRedisServer, type RedisServer } from '../fixtures/store.servers';

// RedisConnections.subscribe on one Redis (REDIS_URL), on a redis-server of its own that the test freezes.
describe('RedisConnections.subscribe on one Redis', () => {
  let redis: RedisServer;
  let moduleRef: TestingModule;
  let connections: RedisConnections;
  const clientNames = async () => {
    const admin = new Redis(redis.url);
    try {
      return String(await admin.client('LIST'));
    } finally {
      admin.disconnect();
    }
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    moduleRef = await Test.createTestingModule({ imports: [ConfigModule, RedisModule] })
      .overrideProvider(APP_CONFIG)
      .useValue(loadConfig({ ...process.env, REDIS_URL: redis.url, REDIS_CLUSTER_NODES: undefined }))
      .setLogger(false as never)
      .compile();
    await moduleRef.init();
    connections = moduleRef.get(RedisConnections);
  });

  afterAll(async () => {
    redis?.thaw(); // a failed case may have left it frozen
    await moduleRef?.close();
    await redis?.destroy();
  });

  it('hears what is published once subscribed', async () => {
    const heard: string[] = [];
    await connections.subscribe('medium-live', 'medium:live', { message: (m) => heard.push(m) });
    await connections.publish('medium:live', 'hello');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard).toEqual(['hello']);
  });

  it('gives up a SUBSCRIBE the server takes and never confirms, counts it, and closes that connection', async () => {
    const before = connections.subscribeTimeouts;
    redis.freeze();
    const startedAt = performance.now();
    try {
      await expect(
        connections.subscribe('medium-stalled', 'medium:stalled', { message: () => undefined }),
      ).rejects.toThrow(RedisUnavailableError);
    } finally {
      redis.thaw();
    }
    expect(performance.now() - startedAt).toBeLessThan(4_000);
    expect(connections.subscribeTimeouts).toBe(before + 1);
    // The stalled connection was closed, not left to subscribe later without anyone listening for it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await clientNames()).not.toMatch(/ name=medium-stalled /);
    expect(await clientNames()).toMatch(/ name=medium-live /);
  }, 10_000);
});
