import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';

import type { RolloutAction } from '@app/db';
import { REDIS, RedisConnections } from '@app/redis';

export const MODELS_CHANGED_CHANNEL = 'models:changed';

/** A hint only: receivers re-read the serving versions from Postgres, which stays the source of truth. */
export interface ModelChangeNotice {
  action: RolloutAction;
  versionId: number | null;
}

/** The Redis pub/sub channel that tells every API process to reload its models. */
@Injectable()
export class ModelChangeRepository {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly connections: RedisConnections,
  ) {}

  async publish(notice: ModelChangeNotice): Promise<void> {
    await this.redis.publish(MODELS_CHANGED_CHANNEL, JSON.stringify(notice));
  }

  /** Resolves once subscribed; a subscriber connection can issue no other command, hence its own. */
  async subscribe(onNotice: () => void): Promise<void> {
    const subscriber = this.connections.create('models-changed');
    subscriber.on('message', onNotice);
    await subscriber.subscribe(MODELS_CHANGED_CHANNEL);
  }
}
