import type { LoggerService } from '@nestjs/common';
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
  const logged: string[] = [];
  const logger: LoggerService = {
    log: (message) => logged.push(String(message)),
    warn: (message) => logged.push(String(message)),
    error: () => undefined,
  };
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
      .setLogger(logger)
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

  it('says it is subscribed again only once the server has subscribed it: a notice published at that moment is heard', async () => {
    const heard: string[] = [];
    const publisher = new Redis(redis.url);
    const admin = new Redis(redis.url);
    // The subscription outlives the case (the last one restarts the server): only the first return publishes.
    let back: (() => void) | undefined;
    try {
      await publisher.ping(); // connected: its PUBLISH leaves at once
      const resubscribed = new Promise<void>((resolve) => (back = resolve));
      await connections.subscribe('medium-back', 'medium:back', {
        message: (m) => heard.push(m),
        resubscribed: () => {
          if (!back) return;
          void publisher.publish('medium:back', 'at once');
          back();
          back = undefined;
        },
      });
      await admin.client('KILL', 'TYPE', 'pubsub'); // ioredis reconnects and subscribes again
      await resubscribed;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(heard).toEqual(['at once']);
    } finally {
      back = undefined;
      publisher.disconnect();
      admin.disconnect();
    }
  });

  it('gives up a SUBSCRIBE the server takes and never confirms, starts without it, and makes it once Redis answers', async () => {
    const before = connections.subscribeTimeouts;
    const heard = { messages: [] as string[], resubscribed: 0 };
    redis.freeze();
    const startedAt = performance.now();
    try {
      await expect(
        connections.subscribe('medium-stalled', 'medium:stalled', {
          message: (m) => heard.messages.push(m),
          resubscribed: () => heard.resubscribed++,
        }),
      ).rejects.toThrow(RedisUnavailableError);
      expect(performance.now() - startedAt).toBeLessThan(4_000);
      expect(connections.subscribeTimeouts).toBe(before + 1);
    } finally {
      redis.thaw();
    }
    // Tried again 2 s after the timeout: made then, and said as a resubscription.
    while (heard.resubscribed === 0 && performance.now() - startedAt < 12_000)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard.resubscribed).toBe(1);
    await connections.publish('medium:stalled', 'back');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard.messages).toEqual(['back']);
    // The stalled connection was closed: one subscriber of that name, the one in use.
    expect((await clientNames()).match(/ name=medium-stalled /g)).toHaveLength(1);
    // Said once each way, though the server never refused a connection.
    for (const what of ['unavailable', 'is back'])
      expect(logged.filter((line) => line.startsWith(`connection "medium-stalled" ${what}`))).toHaveLength(1);
  }, 20_000);

  // Last: it kills the server and starts another on its port.
  it('reports Redis down once across its attempts, and its return once', async () => {
    const resubscribed = { count: 0 };
    await redis.kill();
    const startedAt = performance.now();
    await expect(
      connections.subscribe('medium-down', 'medium:down', {
        message: () => undefined,
        resubscribed: () => resubscribed.count++,
      }),
    ).rejects.toThrow(RedisUnavailableError);
    // Refused at once (its retries spent in under a second), then tried again 2 s later: a second attempt, failed too.
    await new Promise((resolve) => setTimeout(resolve, 4_500 - (performance.now() - startedAt)));
    await redis.start();
    while (resubscribed.count === 0 && performance.now() - startedAt < 25_000)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(resubscribed.count).toBe(1);
    const about = (what: string) => logged.filter((line) => line.startsWith(`connection "medium-down" ${what}`));
    expect(about('unavailable')).toHaveLength(1);
    expect(about('is back')).toHaveLength(1);
  }, 40_000);
});
