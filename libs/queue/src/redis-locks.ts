import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';

import { REDIS, type RedisClient } from '@app/redis';

/** Deletes the lock only if it is still ours: after an expiry another process may hold it. */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;
/** Extends the lock only if it is still ours. */
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const POLL_MS = 25;

/** A lock held by this process until it releases it or lets it expire. */
export interface LockLease {
  /** Runs `work`, extending the lock every third of its time-to-live until `work` settles, then releases it. */
  hold<T>(work: () => Promise<T>): Promise<T>;
  release(): Promise<void>;
}

/**
 * Cluster-wide mutual exclusion on one Redis key (SET NX PX with a random token): a holder that dies frees the lock
 * when its time-to-live runs out, and only the holder of the token can extend or release it. While Redis cannot be
 * reached a holder cannot extend its lock: another process may take it once it expires.
 */
@Injectable()
export class RedisLocks {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  /** The lock if it is free now, else null. */
  async tryAcquire(key: string, ttlMs: number): Promise<LockLease | null> {
    const token = randomUUID();
    return (await this.redis.set(key, token, 'PX', ttlMs, 'NX')) === null ? null : this.lease(key, token, ttlMs);
  }

  /**
   * The lock, waiting for it at most `waitMs` (by default as long as a holder may keep it without extending it: twice
   * its time-to-live); null if it is still held then.
   */
  async acquire(key: string, ttlMs: number, waitMs = 2 * ttlMs): Promise<LockLease | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lease = await this.tryAcquire(key, ttlMs);
      if (lease) return lease;
      if (Date.now() > deadline) return null;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private lease(key: string, token: string, ttlMs: number): LockLease {
    const release = async () => {
      await this.redis.eval(RELEASE, 1, key, token);
    };
    return {
      release,
      hold: async (work) => {
        const extender = setInterval(() => {
          // A failed extension (Redis away for a moment) is retried at the next one; the work goes on regardless.
          this.redis.eval(EXTEND, 1, key, token, ttlMs).catch(() => undefined);
        }, ttlMs / 3);
        try {
          return await work();
        } finally {
          clearInterval(extender);
          // Unreleased, the lock still expires: a failed release must not hide how the work went.
          await release().catch(() => undefined);
        }
      },
    };
  }
}
