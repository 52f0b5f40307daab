import { isRedisUnavailable, RedisUnavailableError, withRedisDeadline } from './redis-unavailable';

describe('isRedisUnavailable', () => {
  it.each([
    'Connection is closed.',
    "Cluster isn't ready and enableOfflineQueue options is false",
    'Too many Cluster redirections. Last error: Error: Connection is closed.',
    'None of startup nodes is available',
    'Failed to refresh slots cache.',
    'CLUSTERDOWN The cluster is down',
    'CLUSTERDOWN Hash slot not served',
  ])('says yes to %j', (message) => {
    expect(isRedisUnavailable(new Error(message))).toBe(true);
  });

  it('says no to a command that Redis refused', () => {
    expect(isRedisUnavailable(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(
      false,
    );
    expect(isRedisUnavailable(new Error("CROSSSLOT Keys in request don't hash to the same slot"))).toBe(false);
  });
});

describe('withRedisDeadline', () => {
  it('passes an answer through', async () => {
    await expect(withRedisDeadline(Promise.resolve(7), 50)).resolves.toBe(7);
  });

  it('turns a command that waits past the deadline into RedisUnavailableError', async () => {
    await expect(withRedisDeadline(new Promise(() => undefined), 20)).rejects.toBeInstanceOf(RedisUnavailableError);
  });
});
