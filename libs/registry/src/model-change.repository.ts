import { Injectable } from '@nestjs/common';

import type { RolloutAction } from '@app/db';
import { RedisConnections } from '@app/redis';

export const MODELS_CHANGED_CHANNEL = 'models:changed';

/** A hint only: receivers re-read the serving versions from Postgres, which stays the source of truth. */
export interface ModelChangeNotice {
  action: RolloutAction;
  versionId: number | null;
}

/** The Redis pub/sub channel that tells every API process to reload its models. */
@Injectable()
export class ModelChangeRepository {
  constructor(private readonly connections: RedisConnections) {}

  async publish(notice: ModelChangeNotice): Promise<void> {
    await this.connections.publish(MODELS_CHANGED_CHANNEL, JSON.stringify(notice));
  }

  /** Resolves once subscribed. */
  subscribe(onNotice: () => void): Promise<void> {
    return this.connections.subscribe('models-changed', MODELS_CHANGED_CHANNEL, { message: onNotice });
  }
}
