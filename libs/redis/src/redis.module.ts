import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';

import { APP_CONFIG, type AppConfig, type RedisNode } from '@app/config';

import { pingAll, refreshSlots, type RedisClient } from './redis-client';
import { checkRedisCredentials, clusterNodeOptions } from './redis-credentials';
import { reconnectSoon } from './redis-options';
import { isRedisUnavailable, RedisUnavailableError } from './redis-unavailable';

/** The shared command connection: `@Inject(REDIS) redis: RedisClient`. */
export const REDIS = Symbol('REDIS');

/**
 * The feature cache's own connection, made to fail fast rather than wait: no offline queue (a command while
 * disconnected fails at once), a command timeout, reconnects at most 500 ms apart so that the cache is back soon
 * after Redis is. The scoring path reads Postgres instead whenever it fails.
 */
export const CACHE_REDIS = Symbol('CACHE_REDIS');

/**
 * How a connection behaves, in either mode, besides reconnecting at most 500 ms apart (reconnectSoon):
 * - `commands`: waits and retries (offline queue, 3 retries; on a cluster, redirections and failover retries);
 * - `fail-fast`: the feature cache's (see CACHE_REDIS); on a cluster, a command to a node that is down fails at once
 *   instead of being retried while its replica is promoted;
 * - `bull-client`, `bull-blocking`: what Bull asks of its command and its blocking / subscriber connections.
 */
export type ConnectionProfile = 'commands' | 'fail-fast' | 'bull-client' | 'bull-blocking';

const PROFILES: Record<ConnectionProfile, { redis: RedisOptions; cluster?: ClusterOptions }> = {
  // The one connection whose slot map names nodes for the metrics and pub/sub: read again every 5 s, not only on errors.
  commands: { redis: { maxRetriesPerRequest: 3 }, cluster: { slotsRefreshInterval: 5000 } },
  'fail-fast': {
    redis: { enableOfflineQueue: false, commandTimeout: 500, maxRetriesPerRequest: 0 },
    // A pipeline whose slot is mid-migration is answered TRYAGAIN until its keys have moved, which ioredis would retry
    // 16 times 100 ms apart: a few immediate tries instead, then its reads go key by key (mgetEach). Three
    // redirections are as many as one key needs (MOVED after a failover, then ASK).
    cluster: {
      enableOfflineQueue: false,
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      retryDelayOnTryAgain: 0,
      maxRedirections: 3,
    },
  },
  // Bull's own defaults: its command connection retries as ioredis does, its blocking ones forever.
  'bull-client': { redis: { maxRetriesPerRequest: 20, enableReadyCheck: false } },
  'bull-blocking': { redis: { maxRetriesPerRequest: null, enableReadyCheck: false } },
};

/**
 * Makes the connections, on one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES) alike; reports each
 * connection's outages once per change through the app's logger (an error event would otherwise be printed raw by
 * ioredis at every reconnect attempt, and a cluster reports every node's); closes every connection at shutdown.
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly open = new Set<RedisClient>();
  private closing = false;
  private timeouts = 0;
  /** The shared command connection (REDIS). */
  readonly commands: RedisClient;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.commands = this.create('commands');
  }

  /** `health`: whose outage reports it shares (those of one subscription's successive attempts: one report, not each). */
  create(name: string, profile: ConnectionProfile = 'commands', health = this.health(name)): RedisClient {
    const { redis, cluster } = PROFILES[profile];
    const nodes = this.config.REDIS_CLUSTER_NODES;
    const client = nodes
      ? new Cluster(nodes, {
          clusterRetryStrategy: reconnectFailingQueued(redis.maxRetriesPerRequest),
          // ioredis resolves the seeds' names to addresses, which a certificate issued to the names does not cover.
          ...(this.config.REDIS_CLUSTER_TLS ? { dnsLookup: keepHostName } : {}),
          natMap: this.config.REDIS_CLUSTER_NAT_MAP,
          ...cluster,
          redisOptions: { connectionName: name, ...clusterNodeOptions(this.config), ...redis },
        })
      : new Redis(this.config.REDIS_URL, { connectionName: name, retryStrategy: reconnectSoon, ...redis });
    this.track(client, health);
    return client;
  }

  /**
   * Publishes `message` on `channel`. On one Redis, its subscribers have it before this resolves; on a cluster too,
   * since it is published on the master that serves the channel's slot, where subscribe() listens (a PUBLISH elsewhere
   * would reach them over the cluster bus, a moment after it returned).
   */
  async publish(channel: string, message: string): Promise<void> {
    const owner = this.channelOwner(channel);
    const node = owner && (this.commands as Cluster).nodes('master').find((n) => nodeKey(n.options) === owner);
    if (node) {
      try {
        await node.publish(channel, message);
        return;
      } catch {
        // That master is down or no longer serves the slot: any node relays it to every subscriber.
      }
    }
    await this.commands.publish(channel, message);
  }

  /**
   * Subscribes to `channel` on a connection of its own (a subscriber can issue no other command) and resolves once
   * subscribed. `dropped` runs when the subscription stops being live (notices are not received until `resubscribed`
   * runs, after which those published meanwhile are known to be lost).
   * Rejects when the first subscription cannot be made (Redis down or hung at boot) so that the caller starts without
   * notices rather than hang, and keeps trying meanwhile: `resubscribed` runs once it is made.
   */
  async subscribe(name: string, channel: string, listener: SubscriptionListener): Promise<void> {
    if (this.config.REDIS_CLUSTER_NODES) return this.subscribeOnCluster(name, channel, listener);
    return this.subscribeOnOne(name, channel, listener);
  }

  /** SUBSCRIBEs a node took the connection for and did not confirm in time (each then tried again). */
  get subscribeTimeouts(): number {
    return this.timeouts;
  }

  /** Whether the shared command connection is up: what routes that cannot work without Redis check first. */
  available(): boolean {
    return this.commands.status === 'ready';
  }

  /** The nodes the shared connection knows of: the one Redis (a master), or the cluster's as its slot map names them. */
  knownNodes(): { master: number; replica: number } {
    if (!this.commands.isCluster) return { master: 1, replica: 0 };
    const cluster = this.commands as Cluster;
    return { master: cluster.nodes('master').length, replica: cluster.nodes('slave').length };
  }

  /** Resolves once Redis answers: the one server, or every master of the cluster that serves slots. */
  ping(): Promise<void> {
    return pingAll(this.commands);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    // A node that takes the connection and never answers would hold QUIT, and the shutdown, forever: it gets as long
    // as a SUBSCRIBE does.
    await Promise.all(
      [...this.open].map((client) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise((resolve) => (timer = setTimeout(resolve, SUBSCRIBE_TIMEOUT_MS)));
        return Promise.race([client.quit(), late])
          .catch(() => undefined)
          .finally(() => {
            clearTimeout(timer);
            if (client.status !== 'end') client.disconnect();
          });
      }),
    );
  }

  /**
   * One Redis: a connection of its own, which ioredis reconnects and subscribes again after a drop (`dropped` at the
   * close, `resubscribed` when ready: a server that hangs leaves it not ready, so not live). Its first SUBSCRIBE is
   * bounded (subscribeWithin): a server that takes the connection and never answers would otherwise hold the process's
   * start forever. Until one is confirmed, each attempt is closed and another made after a growing pause.
   */
  private subscribeOnOne(name: string, channel: string, listener: SubscriptionListener): Promise<void> {
    const health = this.health(name);
    return new Promise((subscribed, failed) => {
      let first = true;
      let failures = 0;
      const attempt = () => {
        if (this.closing) return;
        const subscriber = this.create(name, 'commands', health) as Redis;
        subscriber.on('message', (_channel: string, message: string) => listener.message(message));
        subscriber.once('end', () => this.open.delete(subscriber));
        this.subscribeWithin(subscriber, nodeKey(subscriber.options), channel).then(
          () => {
            subscriber.on('close', () => listener.dropped?.());
            subscriber.on('ready', () => listener.resubscribed?.());
            if (first) subscribed();
            else listener.resubscribed?.();
          },
          (error: Error) => {
            // A server that took the connection, or became ready, then never confirmed: down all the same.
            health.down(error.message);
            subscriber.disconnect();
            if (first) failed(error);
            first = false;
            setTimeout(attempt, retryPause(failures++)).unref();
          },
        );
      };
      attempt();
    });
  }

  /**
   * A plain connection to the master that serves the channel's slot, where publish() publishes (else, while the slot
   * map is unknown, to any node: a PUBLISH reaches every node). Any other node has a notice only after a hop over the
   * cluster bus, which may come after the PUBLISH has returned: so whenever the slot map, read again every 5 s, names
   * another master (a manual failover leaves the old one up as a replica, holding the connection; a boot before the
   * map was known), the subscription moves there, the new one subscribed before the old one closes so that no notice
   * falls between. When the connection drops, it comes back on the slot's master as the
   * refreshed map names it, a promoted replica after a failover. ioredis's own cluster subscriber would pick any node
   * and say nothing when it has resubscribed, and a holder of in-memory rows must know.
   * Every SUBSCRIBE is bounded (subscribeWithin): a node that takes the connection and never answers (a frozen process,
   * a proxy with nothing behind it) would otherwise hold a move, or the subscription itself after a drop, forever. A
   * move that fails leaves the old subscription in use and is tried again at a refresh after a growing pause.
   * Rejects if the first subscription fails as many times as a command is retried on one Redis (the cluster is
   * unreachable at boot): the caller starts without notices rather than hang, and the subscription, made later, says
   * `resubscribed`.
   */
  private subscribeOnCluster(name: string, channel: string, listener: SubscriptionListener): Promise<void> {
    const health = this.health(name);
    const cluster = this.commands as Cluster;
    const seeds = this.config.REDIS_CLUSTER_NODES!;
    return new Promise((subscribed, failed) => {
      let next = 0;
      let failures = 0;
      let first = true;
      /** It has been live once: after a drop it comes back at once, after a boot that gave up it waits longer. */
      let wasLive = false;
      /**
       * The subscription in use, or being made after a drop (not live yet: a move then would hide the drop from
       * `resubscribed`); only its end calls for another one.
       */
      let current: { client: Redis; node: string; live: boolean } | undefined;
      let moving = false;
      /** Moves failed in a row, and the time before which none is tried again. */
      let moveFailures = 0;
      let nextMoveAt = 0;
      const open = (node: string) => {
        const client = new Redis({
          ...parseNodeKey(node),
          connectionName: name,
          retryStrategy: null,
          ...clusterNodeOptions(this.config),
        });
        this.track(client, health);
        client.on('message', (_channel: string, message: string) => listener.message(message));
        client.once('end', () => {
          this.open.delete(client);
          if (this.closing || client !== current?.client) return;
          // Not live any more: a move made from it now reports the gap, and its connect() then steps aside.
          if (current.live) listener.dropped?.();
          current.live = false;
          failures++;
          if (first && failures > BOOT_SUBSCRIBE_RETRIES) {
            // The caller starts without notices; the next subscription made is a resubscription.
            first = false;
            failed(new RedisUnavailableError(`redis cluster: could not subscribe to ${channel}`));
          }
          // Given up at boot: a growing pause, as on one Redis; otherwise back at once, as after a failover.
          const pause = wasLive || first ? reconnectSoon(failures) : retryPause(failures - BOOT_SUBSCRIBE_RETRIES - 1);
          setTimeout(connect, pause).unref();
        });
        return client;
      };
      const connect = () =>
        void refreshSlots(cluster)
          .catch(() => undefined) // the map as it was, or the seeds
          .then(() => {
            // A move that ended after the drop holds a live subscription: another would be made only to leak.
            if (current?.live) return;
            const node = this.channelOwner(channel) ?? nodeKey(seeds[next++ % seeds.length]);
            const client = open(node);
            current = { client, node, live: false };
            this.subscribeWithin(client, node, channel).then(
              () => {
                if (client !== current?.client) return; // a move that was under way took over
                current.live = true;
                wasLive = true;
                failures = 0;
                health.up();
                if (first) subscribed();
                else listener.resubscribed?.();
                first = false;
              },
              (error: Error) => {
                if (client === current?.client) health.down(error.message);
                client.disconnect();
              },
            );
          });
      cluster.on('refresh', () => {
        const owner = this.channelOwner(channel);
        const from = current;
        if (this.closing || moving || !owner || !from?.live || owner === from.node || Date.now() < nextMoveAt) return;
        moving = true;
        const client = open(owner);
        this.subscribeWithin(client, owner, channel)
          .then(
            () => {
              const previous = current!;
              current = { client, node: owner, live: true };
              moveFailures = 0;
              health.up();
              previous.client.disconnect();
              // The subscription dropped while this one was being made: notices may have been lost in between.
              if (previous !== from || !from.live) listener.resubscribed?.();
            },
            (error: Error) => {
              client.disconnect();
              const pause = retryPause(++moveFailures);
              nextMoveAt = Date.now() + pause;
              this.logger.warn(
                `connection "${name}" could not move to ${owner}, the master of ${channel} (${error.message}); ` +
                  `it stays on ${current?.node}, next try in ${pause / 1000} s`,
              );
            },
          )
          .finally(() => (moving = false));
      });
      connect();
    });
  }

  /**
   * Subscribes `client` to `channel`; rejects with a RedisUnavailableError if Redis could not be reached, or, once
   * disconnected and counted, if `node` has not confirmed within SUBSCRIBE_TIMEOUT_MS; with Redis's refusal otherwise.
   */
  private subscribeWithin(client: Redis, node: string, channel: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.timeouts++;
        client.disconnect();
        reject(new RedisUnavailableError(`${node} did not confirm SUBSCRIBE within ${SUBSCRIBE_TIMEOUT_MS} ms`));
      }, SUBSCRIBE_TIMEOUT_MS);
    });
    const confirmed = client.subscribe(channel).then(
      () => undefined,
      (e: Error) => {
        // A refusal (an ACL without the channel, say) is a configuration error, said as it is.
        throw isRedisUnavailable(e) ? new RedisUnavailableError(`${node}: SUBSCRIBE failed (${e.message})`) : e;
      },
    );
    return Promise.race([confirmed, timedOut]).finally(() => clearTimeout(timer));
  }

  /**
   * On a cluster, `host:port` of the master that serves the channel's slot, if the slot map names one, as this process
   * reaches it: ioredis maps the addresses of the map it reads through REDIS_CLUSTER_NAT_MAP, but puts a redirection's
   * as the node announced it, until the next read.
   */
  private channelOwner(channel: string): string | undefined {
    const owner = this.commands.isCluster ? (this.commands as Cluster).slots[calculateSlot(channel)]?.[0] : undefined;
    const mapped = owner === undefined ? undefined : this.config.REDIS_CLUSTER_NAT_MAP?.[owner];
    return mapped ? nodeKey(mapped) : owner;
  }

  /** The outage state of one named connection, logged on change only. */
  private health(name: string): ConnectionHealth {
    let down = false;
    return {
      down: (reason) => {
        if (down) return;
        down = true;
        this.logger.warn(`connection "${name}" unavailable (${reason}); retrying`);
      },
      up: () => {
        if (!down) return;
        down = false;
        this.logger.log(`connection "${name}" is back`);
      },
    };
  }

  private track(client: RedisClient, health: ConnectionHealth): void {
    this.open.add(client);
    if (!client.isCluster) {
      client.on('error', (error: Error) => health.down(error.message));
      client.on('ready', () => health.up());
      return;
    }
    // A cluster is up again once no node it failed to reach still serves slots: a connection to that node became
    // ready again, or a replica took its slots over.
    const cluster = client as Cluster;
    const failing = new Set<string>();
    const fail = (node: string, error: Error) => {
      failing.add(node);
      health.down(`${node}: ${error.message}`);
    };
    const recover = (node: string) => {
      failing.delete(node);
      if (failing.size === 0) health.up();
    };
    cluster.on('error', (error: Error) => fail('cluster', error));
    cluster.on('node error', (error: Error, node: string) => fail(node, error));
    cluster.on('ready', () => recover('cluster'));
    cluster.on('+node', (node: Redis) => node.once('ready', () => recover(nodeKey(node.options))));
    cluster.on('refresh', () => {
      const owners = new Set(cluster.slots.map((nodes) => nodes[0]));
      for (const node of failing) if (node !== 'cluster' && !owners.has(node)) recover(node);
    });
  }
}

/**
 * A cluster's reconnects, at most 500 ms apart (reconnectSoon). Past `retries` failed attempts, the commands queued
 * meanwhile fail, then at each further attempt those queued since, as one Redis fails a command after
 * maxRetriesPerRequest reconnects: a Cluster holds them until it is back otherwise, however long that takes (when it
 * is unreachable at boot, the start-up with them). `null`: held, as Bull's blocking connections ask.
 */
function reconnectFailingQueued(retries: number | null | undefined): ClusterOptions['clusterRetryStrategy'] {
  return function (this: Cluster, attempt: number) {
    // flushQueue() is private in the typings: it is what a Cluster itself calls when it gives up reconnecting.
    if (typeof retries === 'number' && attempt > retries)
      (this as unknown as { flushQueue(error: Error): void }).flushQueue(
        new RedisUnavailableError(`redis cluster unreachable after ${retries} reconnection attempts`),
      );
    return reconnectSoon(attempt);
  };
}

/**
 * How long a node has to confirm a SUBSCRIBE before the attempt is given up and made again: one that answers at all
 * does within milliseconds, and the start-up's credentials check waits as long for a node's first reply.
 */
export const SUBSCRIBE_TIMEOUT_MS = 2000;
/**
 * The longest pause between two tries at moving a subscription (the old one stays in use meanwhile), or at making one
 * that has never been live.
 */
const MOVE_RETRY_MAX_MS = 60_000;

/** The pause after the `n`th (from 0) failed try at moving or making a subscription: doubling, capped. */
const retryPause = (n: number) => Math.min(SUBSCRIBE_TIMEOUT_MS * 2 ** n, MOVE_RETRY_MAX_MS);

/** Failed attempts at a first subscription before it is given up: what the `commands` profile retries a command. */
const BOOT_SUBSCRIBE_RETRIES = PROFILES.commands.redis.maxRetriesPerRequest!;

const keepHostName: ClusterOptions['dnsLookup'] = (address, callback) => callback(null, address);

const nodeKey = ({ host, port }: { host?: string; port?: number }) => `${host}:${port}`;

function parseNodeKey(key: string): RedisNode {
  const colon = key.lastIndexOf(':');
  return { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
}

/** What a subscriber hears: notices, and when notices stop and start again (those in between are lost). */
export interface SubscriptionListener {
  message(message: string): void;
  dropped?(): void;
  resubscribed?(): void;
}

interface ConnectionHealth {
  down(reason: string): void;
  up(): void;
}

@Global()
@Module({
  providers: [
    {
      provide: RedisConnections,
      inject: [APP_CONFIG],
      // Before any connection is made: one with credentials Redis refuses would retry forever instead of failing.
      useFactory: async (config: AppConfig) => {
        await checkRedisCredentials(config);
        return new RedisConnections(config);
      },
    },
    { provide: REDIS, inject: [RedisConnections], useFactory: (c: RedisConnections) => c.commands },
    {
      provide: CACHE_REDIS,
      inject: [RedisConnections],
      // Without an offline queue, a command sent before the first connect fails: wait for it (not for an outage).
      useFactory: async (c: RedisConnections) => {
        const client = c.create('feature-cache', 'fail-fast');
        await new Promise((resolve) => {
          client.once('ready', resolve);
          setTimeout(resolve, 2000).unref();
        });
        return client;
      },
    },
  ],
  exports: [REDIS, CACHE_REDIS, RedisConnections],
})
export class RedisModule {}
