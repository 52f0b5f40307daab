import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { ReadReplica, REPLICA_FALLBACKS } from '@app/db';
import { RedisConnections, SUBSCRIBE_TIMEOUT_MS } from '@app/redis';

import { FeatureCacheRepository } from '../features/feature-cache.repository';
import { MetricsService } from '../platform/metrics.service';

/**
 * The state of the stores in /metrics, under the same names with one Redis or a cluster, with or without a read
 * replica; every value is read at scrape time from what the connections already track.
 */
@Injectable()
export class StoreMetrics {
  constructor(
    metrics: MetricsService,
    connections: RedisConnections,
    cache: FeatureCacheRepository,
    replica: ReadReplica,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    const registers = [metrics.registry];
    new Gauge({
      name: 'redis_nodes',
      help: 'Redis nodes this process knows of, by role: the one Redis (a master), or the cluster as its slot map names it',
      labelNames: ['role'] as const,
      registers,
      collect() {
        const { master, replica } = connections.knownNodes();
        this.set({ role: 'master' }, master);
        this.set({ role: 'replica' }, replica);
      },
    });
    new Counter({
      name: 'redis_subscribe_timeouts_total',
      help:
        'SUBSCRIBEs (pub/sub notices) a Redis Cluster node took the connection for and did not confirm within ' +
        `${SUBSCRIBE_TIMEOUT_MS / 1000} s; ` +
        'each is given up and tried again',
      registers,
      collect() {
        this.reset();
        this.inc(connections.subscribeTimeouts);
      },
    });
    new Gauge({
      name: 'feature_cache_breaker_open',
      help: "1 while the feature cache reads a node's entities from Postgres (it failed within the last second), by master",
      labelNames: ['node'] as const,
      registers,
      // Reset first: a master that no longer serves slots (after a failover) leaves no stale series behind.
      collect() {
        this.reset();
        for (const { master, open } of cache.nodes()) this.set({ node: master }, open ? 1 : 0);
      },
    });
    metrics.scrapedGauge(
      'read_replica_in_use',
      '1 while the reads that tolerate lag go to the read replica; 0 without one, or while it is down or lagging',
      () => (replica.state === 'up' ? 1 : 0),
    );
    new Counter({
      name: 'read_replica_reads_total',
      help: 'Reads that tolerate lag (live metrics, compare-live, reports, rollout policy samples), by the server that answered',
      labelNames: ['served_by'] as const,
      registers,
      collect() {
        this.reset();
        this.inc({ served_by: 'replica' }, replica.reads.served.replica);
        this.inc({ served_by: 'primary' }, replica.reads.served.primary);
      },
    });
    new Counter({
      name: 'read_replica_fallbacks_total',
      help:
        'Of those reads, answered by the primary although a replica is configured, by why: the replica was unusable ' +
        '(down, lagging), the read failed there, or it had not replayed the row yet',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const reason of REPLICA_FALLBACKS) this.inc({ reason }, replica.reads.fallbacks[reason]);
      },
    });
    // Only with a replica: a lag of 0 would claim one that is up to date.
    if (config.DATABASE_READ_URL)
      metrics.scrapedGauge(
        'read_replica_lag_seconds',
        'How far the read replica was behind the primary at the last check (every second); NaN while it does not answer',
        () => replica.lagSeconds ?? NaN,
      );
  }
}
