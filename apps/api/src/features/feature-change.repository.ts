import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';

import type { EntityKind } from '@app/db';
import { RedisConnections, RedisUnavailableError } from '@app/redis';

export const FEATURES_CHANGED_CHANNEL = 'features:changed';

export interface FeatureChangeNotice {
  kind: EntityKind;
  ids: string[];
}

/**
 * The Redis pub/sub channel that tells every API process which entities' features were written, so that each drops
 * what it holds of them in memory. A notice can be lost (a dropped connection): the in-memory entries' TTL bounds how
 * long that matters, and a drop and the reconnect after it are reported so that the holder can stop trusting what it
 * holds until notices flow again, then drop everything that may have missed one.
 */
export interface FeatureChangeListener {
  onNotice(notice: FeatureChangeNotice): void;
  /** Notices are not received from now until onReconnect (heard once per drop). */
  onDropped(): void;
  /** Notices are received again; those published since onDropped were lost. */
  onReconnect(): void;
}

@Injectable()
export class FeatureChangeRepository {
  private readonly listeners: FeatureChangeListener[] = [];
  /** One subscriber connection for every listener of this process. */
  private subscribed?: Promise<void>;
  private live = false;
  /**
   * Marks this process's own notices: its listeners already heard them at publish, and Redis's echo, which may come
   * after the next request has cached the rewritten items again, would drop those fresh rows for nothing.
   */
  private readonly origin = randomUUID();

  constructor(private readonly connections: RedisConnections) {}

  /**
   * Whether notices are being received now: the subscription may be made after its first try failed, or drop and come
   * back. What a process keeps of written entities is trusted only while it is.
   */
  get listening(): boolean {
    return this.live;
  }

  /**
   * This process's listeners hear it at once, so that a write is seen by the next request here even before Redis
   * echoes it; the other processes hear it through Redis, which has sent it to them before it answers the PUBLISH,
   * yet each reads it on its own event loop: what they promise is a bound, not their next request (scaling-out.md).
   */
  async publish(notice: FeatureChangeNotice): Promise<void> {
    for (const listener of this.listeners) listener.onNotice(notice);
    await this.connections.publish(FEATURES_CHANGED_CHANNEL, JSON.stringify({ ...notice, origin: this.origin }));
  }

  /**
   * Resolves once subscribed; rejects while the subscription is not live (not made yet, or dropped): RedisConnections
   * keeps trying, and the listener hears onReconnect when it is back.
   */
  async subscribe(listener: FeatureChangeListener): Promise<void> {
    this.listeners.push(listener);
    this.subscribed ??= this.connections
      .subscribe('features-changed', FEATURES_CHANGED_CHANNEL, {
        message: (message) => {
          const notice = parseNotice(message, this.origin);
          if (notice) for (const listener of this.listeners) listener.onNotice(notice);
        },
        dropped: () => {
          if (!this.live) return; // one Redis reports a drop again at each failed reconnect
          this.live = false;
          for (const listener of this.listeners) listener.onDropped();
        },
        resubscribed: () => {
          this.live = true;
          for (const listener of this.listeners) listener.onReconnect();
        },
      })
      .then(() => {
        this.live = true;
      });
    // A listener's answer is the subscription as it is now, not as its first try went: made later, it resolves;
    // dropped since, it rejects (and the listener hears onReconnect when it is back).
    await this.subscribed.catch((e: unknown) => {
      if (!this.live) throw e;
    });
    if (!this.live) throw new RedisUnavailableError(`the ${FEATURES_CHANGED_CHANNEL} subscription is down`);
  }
}

/**
 * The channel is global to the Redis server (to the whole cluster): whatever else publishes on it, only well-formed notices from another
 * process count.
 */
function parseNotice(message: string, ownOrigin: string): FeatureChangeNotice | undefined {
  try {
    const notice = JSON.parse(message) as Partial<FeatureChangeNotice> & { origin?: unknown };
    const valid =
      notice.origin !== ownOrigin &&
      (notice.kind === 'user' || notice.kind === 'item') &&
      Array.isArray(notice.ids) &&
      notice.ids.every((id) => typeof id === 'string');
    return valid ? { kind: notice.kind!, ids: notice.ids! } : undefined;
  } catch {
    return undefined;
  }
}
