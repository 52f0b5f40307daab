import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

import { RedisConnections } from '@app/redis';

/** The round trips that prove the stores answer. */
@Injectable()
export class HealthRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly redis: RedisConnections,
  ) {}

  async pingPostgres(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  /** On a cluster, every master that serves slots: one down is a degraded cache until its replica takes over. */
  async pingRedis(): Promise<void> {
    await this.redis.ping();
  }
}
