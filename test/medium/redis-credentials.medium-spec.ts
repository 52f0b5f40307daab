import { loadConfig } from '@app/config';
import { checkRedisCredentials } from '@app/redis';

import { freePort } from '../fixtures/free-port';
import { startRedisServer, type RedisServer } from '../fixtures/store.servers';

// The start-up check of one Redis's credentials (REDIS_URL), on a redis-server of its own with a password.
describe('checkRedisCredentials on one Redis', () => {
  let redis: RedisServer;
  const url = (credentials: string) => redis.url.replace('redis://', `redis://${credentials}`);
  const check = (redisUrl: string) => checkRedisCredentials(loadConfig({ REDIS_URL: redisUrl }));

  beforeAll(async () => {
    redis = await startRedisServer(['--requirepass', 'one-redis-secret']);
  });

  afterAll(() => redis?.destroy());

  it("passes with REDIS_URL's password, and names REDIS_URL's credentials without it or with a wrong one", async () => {
    await expect(check(url(':one-redis-secret@'))).resolves.toBeUndefined();
    await expect(check(redis.url)).rejects.toThrow(
      /^Redis at 127\.0\.0\.1:\d+ refused the connection \(NOAUTH .*\): check REDIS_URL's user and password/,
    );
    await expect(check(url(':wrong@'))).rejects.toThrow(/\(WRONGPASS .*\): check REDIS_URL's user and password/);
    // The secret is never echoed.
    await expect(check(url(':wrong@'))).rejects.not.toThrow(/wrong@/);
  });

  it('names REDIS_CLUSTER_NODES when a seed is a Redis without cluster mode, which the cluster client retries forever', async () => {
    const { host } = new URL(redis.url);
    await expect(
      checkRedisCredentials(loadConfig({ REDIS_CLUSTER_NODES: host, REDIS_CLUSTER_PASSWORD: 'one-redis-secret' })),
    ).rejects.toThrow(
      new RegExp(
        `^Redis at ${host.replaceAll('.', '\\.')} is not a cluster node \\(ERR .*cluster support disabled.*\\): REDIS_CLUSTER_NODES`,
      ),
    );
  });

  it('starts, warning to use redis://, when rediss:// reaches a plain Redis that never answers the handshake', async () => {
    const warn = jest.fn();
    const tls = url(':one-redis-secret@').replace('redis://', 'rediss://');
    await expect(checkRedisCredentials(loadConfig({ REDIS_URL: tls }), { warn } as never)).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(
        /did not answer a TLS handshake within 2000 ms: if it takes plain TCP, use redis:\/\/ in REDIS_URL/,
      ),
    );
  });

  it('lets a process start while Redis does not answer (the degraded mode), within the check timeout', async () => {
    const startedAt = performance.now();
    await expect(check(`redis://127.0.0.1:${await freePort()}`)).resolves.toBeUndefined();
    redis.freeze();
    try {
      await expect(check(url(':one-redis-secret@'))).resolves.toBeUndefined();
    } finally {
      redis.thaw();
    }
    expect(performance.now() - startedAt).toBeLessThan(5_000);
  });
});
