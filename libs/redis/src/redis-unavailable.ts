import { isNetworkErrorCode } from '@app/common';

/**
 * What ioredis says when a command cannot be sent or answered: retries spent, closed, offline, timed out; on a
 * cluster also no reachable node, redirections spent, or a cluster that cannot serve the slot (a master down).
 */
const NOT_SENT =
  /Connection is closed|enableOfflineQueue options is false|Command timed out|Reached the max retries per request|None of startup nodes is available|Failed to refresh slots cache|Too many Cluster redirections|Cluster is ended|^CLUSTERDOWN|^TRYAGAIN/;

/** Thrown where Redis is known to be down before a command is tried (the connection monitor says so). */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';

  constructor(message = 'redis unavailable') {
    super(message);
  }
}

/** Whether an error means Redis cannot be reached, rather than that a command was wrong: the API answers 503. */
export function isRedisUnavailable(error: unknown): boolean {
  if (error instanceof RedisUnavailableError) return true;
  if (typeof error !== 'object' || error === null) return false;
  const { name, code, message } = error as { name?: unknown; code?: unknown; message?: unknown };
  return (
    name === 'MaxRetriesPerRequestError' ||
    isNetworkErrorCode(code) ||
    (typeof message === 'string' && NOT_SENT.test(message))
  );
}

/**
 * `command`, or RedisUnavailableError once `ms` have passed: a Bull call sent in the instant between Redis dying and
 * the connection monitor noticing would otherwise wait in the offline queue for as long as the outage lasts.
 */
export function withRedisDeadline<T>(command: Promise<T>, ms = 2_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError()), ms);
  });
  return Promise.race([command, deadline]).finally(() => clearTimeout(timer));
}
