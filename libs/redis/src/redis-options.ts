import type { RedisOptions } from 'ioredis';

/**
 * Reconnect attempts at most 500 ms apart, however long the outage: a client is back within half a second of Redis.
 * ioredis's default backs off to 2 s, Bull's to 20 s (its queue stayed unusable up to 16 s after Redis returned).
 */
export function reconnectSoon(attempt: number): number {
  return Math.min(attempt * 100, 500);
}

/** The connection options of a redis:// or rediss:// URL, for a client that takes options only (Bull's). */
export function redisUrlOptions(url: string): RedisOptions {
  const { protocol, hostname, port, pathname, username, password } = new URL(url);
  return {
    // An IPv6 host comes bracketed in a URL, bare to ioredis.
    host: hostname.replace(/^\[(.*)\]$/, '$1'),
    port: port === '' ? 6379 : Number(port),
    db: Number(pathname.slice(1) || 0),
    ...(username !== '' && { username: decodeURIComponent(username) }),
    ...(password !== '' && { password: decodeURIComponent(password) }),
    ...(protocol === 'rediss:' && { tls: {} }),
  };
}
