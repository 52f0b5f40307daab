import { BullModule } from '@nestjs/bull';
import { Module } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { RedisConnections, RedisModule } from '@app/redis';

import { LIVE_OPS_JOB_OPTIONS, LIVE_OPS_QUEUE } from './live-ops-queue.contract';
import { RedisLocks } from './redis-locks';
import { RepeatableJobRunner } from './repeatable-job.runner';
import { QUEUE_PREFIX, TRAINING_JOB_OPTIONS, TRAINING_QUEUE } from './training-queue.contract';

/**
 * Bull on the service's Redis or Redis Cluster, the training queue (API produces, worker consumes), the API's live-ops
 * queue, and the runner of the cluster's repeatable jobs. Bull's connections are made like the others
 * (RedisConnections: reconnects at most 500 ms apart — Bull's own default backs off to 20 s —, outages logged once,
 * closed at shutdown), one per role and queue as Bull asks.
 */
@Module({
  imports: [
    BullModule.forRootAsync({
      imports: [RedisModule],
      inject: [APP_CONFIG, RedisConnections],
      useFactory: (config: AppConfig, connections: RedisConnections) => ({
        prefix: QUEUE_PREFIX,
        createClient: (type) => connections.create(`bull-${type}`, type === 'client' ? 'bull-client' : 'bull-blocking'),
        // Only a processing queue (the worker's) takes locks and looks for stalled jobs; producers ignore these.
        settings: {
          lockDuration: config.TRAINING_LOCK_SECONDS * 1000,
          stalledInterval: config.TRAINING_STALLED_INTERVAL_SECONDS * 1000,
        },
      }),
    }),
    BullModule.registerQueue(
      { name: TRAINING_QUEUE, defaultJobOptions: TRAINING_JOB_OPTIONS },
      { name: LIVE_OPS_QUEUE, defaultJobOptions: LIVE_OPS_JOB_OPTIONS },
    ),
  ],
  providers: [RedisLocks, RepeatableJobRunner],
  exports: [BullModule, RepeatableJobRunner],
})
export class QueueModule {}
