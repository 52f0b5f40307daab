import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';

import { REDIS } from '@app/redis';

/** The round trips that prove the stores answer. */
@Injectable()
export class HealthRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  async pingPostgres(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  async pingRedis(): Promise<void> {
    await this.redis.ping();
  }
}
