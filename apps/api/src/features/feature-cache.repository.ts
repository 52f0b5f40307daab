import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';

import { APP_CONFIG, type AppConfig } from '@app/config';
import type { EntityKind, FeatureMap } from '@app/db';
import {
  batchByNode,
  CACHE_REDIS,
  ensureReady,
  execOrThrow,
  followingRedirection,
  mgetEach,
  REDIS,
  servingNodes,
  type RedisClient,
} from '@app/redis';

import { CircuitBreaker } from './circuit-breaker';

export interface EntityRef {
  kind: EntityKind;
  id: string;
}

/**
 * A cached projection (null: the entity is known not to exist), or a miss with what fill() needs; `unavailable`: the
 * node that holds the entity could not answer (the miss is the degraded mode's, not the cache's).
 */
export type CacheLookup =
  { hit: true; features: FeatureMap | null } | { hit: false; generation: string; unavailable: boolean };

export interface CacheFill {
  entity: EntityRef;
  /** From the miss this fills: a write since then makes the filled entry invalid. */
  generation: string;
  features: FeatureMap | null;
}

/**
 * Redis cache of feature projections.
 *
 * Layout: `feat:{schemaVersion}:{tag}{kind}:{id}` holds `{generation}|{json}` (the features one schema names, or
 * `null` for an entity stored nowhere), and `feat-gen:{tag}{kind}:{id}` holds the entity's generation, a random token
 * replaced at every write. An entry counts only if its generation is the current one, so a write invalidates the entity's
 * entries under every schema version with one SET, with no list of schema versions to keep, and a read that raced
 * the write (Postgres read before it, Redis fill after it) fills an entry that is already invalid instead of one
 * stale for the TTL. Generations outlive the entries written under them (twice the longest entry TTL), so an expired
 * generation can never revive an older entry.
 *
 * The tag is a Redis Cluster hash tag (see SLOT_TAGS): an entity's entries and its generation share a slot, and
 * entities spread evenly over the masters. A read costs one round trip per node, all sent at once: one MGET on a
 * single Redis, one pipeline of per-slot MGETs per cluster node. Reads go to masters only: a replica that has not yet
 * applied a generation would serve a stale entry as current.
 *
 * Reads and fills never fail: while a node is unreachable (its breaker open, BREAKER_OPEN_MS after a failure) the
 * entities it serves are misses, so that scoring reads them from Postgres, and their fills are skipped; the other
 * nodes keep answering. Invalidation goes through the shared connection, which waits and retries rather than fail
 * fast (a 10,000-entity write is one big pipeline per node), and does fail when a node is down, since skipping it
 * would leave stale entries behind.
 */
@Injectable()
export class FeatureCacheRepository {
  /** One per node, made on first use: on a cluster a node down spares the others. */
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    @Inject(CACHE_REDIS) private readonly redis: RedisClient,
    @Inject(REDIS) private readonly writes: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Every entity's lookup, in their order, in one round trip per node; misses where a node cannot answer. */
  async read(schemaVersion: string, entities: EntityRef[]): Promise<CacheLookup[]> {
    const lookups: CacheLookup[] = new Array(entities.length);
    const { entries, generations } = keysOf(schemaVersion, entities);
    await Promise.all(
      batchByNode(this.redis, generations).map(({ node, slots }) =>
        this.breaker(node).run(
          async () => {
            ensureReady(this.redis);
            // Per slot: its entities' entries, then their generations.
            const replies = await mgetEach(
              this.redis,
              slots.map((indexes) => [...indexes.map((i) => entries[i]), ...indexes.map((i) => generations[i])]),
            );
            slots.forEach((indexes, s) =>
              indexes.forEach((i, k) => (lookups[i] = lookupOf(replies[s][k], replies[s][indexes.length + k]))),
            );
          },
          () => {
            for (const indexes of slots) for (const i of indexes) lookups[i] = UNAVAILABLE;
          },
        ),
      ),
    );
    return lookups;
  }

  async fill(schemaVersion: string, fills: CacheFill[]): Promise<void> {
    // Made-up ids must not grow Redis without bound: past the cap, absences are simply read from Postgres next time.
    let absences = this.config.FEATURE_NEGATIVE_CACHE_PER_REQUEST;
    const kept = fills.filter(({ features }) => features !== null || absences-- > 0);
    const keys = keysOf(
      schemaVersion,
      kept.map(({ entity }) => entity),
    ).entries;
    await Promise.all(
      batchByNode(this.redis, keys).map(({ node, slots }) =>
        this.breaker(node).run(
          async () => {
            ensureReady(this.redis);
            const order = slots.flat();
            const entry = (i: number): [string, string, 'EX', number] => {
              const { generation, features } = kept[i];
              const ttl =
                features === null
                  ? this.config.FEATURE_NEGATIVE_CACHE_TTL_SECONDS
                  : this.config.FEATURE_CACHE_TTL_SECONDS;
              return [keys[i], `${generation}|${JSON.stringify(features)}`, 'EX', ttl];
            };
            const pipeline = this.redis.pipeline();
            for (const i of order) pipeline.set(...entry(i));
            // A key of a slot being migrated goes to the importing node on its own (ASK), as an invalidation's does.
            await execOrThrow(this.redis, pipeline, (c) => this.redis.set(...entry(order[c])));
          },
          () => undefined,
        ),
      ),
    );
  }

  /** Makes every cached entry of these entities invalid, whatever its schema version. */
  async invalidate(kind: EntityKind, ids: string[]): Promise<void> {
    const ttl = 2 * Math.max(this.config.FEATURE_CACHE_TTL_SECONDS, this.config.FEATURE_NEGATIVE_CACHE_TTL_SECONDS);
    const keys = keysOf(
      '',
      ids.map((id) => ({ kind, id })),
    ).generations;
    // Run again whole if a failover moved slots since the client last read the slot map, once every node has
    // answered, and with a new generation: the first run's may already have been read, filled under, and replaced by
    // a later write, which setting it again would bring back. A new token only ever invalidates more.
    await followingRedirection(async () => {
      // base64url never contains the `|` separator.
      const generation = randomBytes(9).toString('base64url');
      const runs = await Promise.allSettled(
        batchByNode(this.writes, keys).map(({ slots }) => {
          const order = slots.flat();
          const pipeline = this.writes.pipeline();
          for (const i of order) pipeline.set(keys[i], generation, 'EX', ttl);
          // A key of a slot being migrated goes to the importing node on its own (ASK): its first set, not a rerun.
          return execOrThrow(this.writes, pipeline, (c) => this.writes.set(keys[order[c]], generation, 'EX', ttl));
        }),
      );
      const failed = runs.find((run) => run.status === 'rejected');
      if (failed) throw failed.reason;
    });
  }

  /** Each node reads go to now, by its master's `host:port`, and whether its entities are read from Postgres now. */
  nodes(): { master: string; open: boolean }[] {
    return servingNodes(this.redis).map(({ node, master }) => ({
      master,
      open: this.breakers.get(node)?.open ?? false,
    }));
  }

  private breaker(node: string): CircuitBreaker {
    let breaker = this.breakers.get(node);
    if (!breaker) this.breakers.set(node, (breaker = new CircuitBreaker(BREAKER_OPEN_MS)));
    return breaker;
  }
}

/** Long enough to spare the requests of an outage a failed attempt each, short enough to be back within 2 s. */
const BREAKER_OPEN_MS = 1000;

/**
 * A miss with no generation fills an entry that counts only while the entity has no generation key: never stale.
 * Shared by every unavailable lookup, and never changed.
 */
const UNAVAILABLE: CacheLookup = Object.freeze({ hit: false, generation: '', unavailable: true });

function lookupOf(entry: string | null, generation: string | null): CacheLookup {
  const current = generation ?? '';
  if (entry === null || !entry.startsWith(`${current}|`))
    return { hit: false, generation: current, unavailable: false };
  return { hit: true, features: JSON.parse(entry.slice(current.length + 1)) as FeatureMap | null };
}

/** The key of an entity's entry under a schema version. */
export function entryKey(schemaVersion: string, entity: EntityRef): string {
  return keysOf(schemaVersion, [entity]).entries[0];
}

/** The key of an entity's generation. */
export function generationKey(entity: EntityRef): string {
  return keysOf('', [entity]).generations[0];
}

/** Each entity's entry key under `schemaVersion` and its generation key, its tag hashed once for both. */
function keysOf(schemaVersion: string, entities: readonly EntityRef[]): { entries: string[]; generations: string[] } {
  const entries: string[] = new Array(entities.length);
  const generations: string[] = new Array(entities.length);
  for (let i = 0; i < entities.length; i++) {
    const { kind, id } = entities[i];
    const tag = SLOT_TAGS[Math.floor(calculateSlot(`${kind}:${id}`) / SLOT_STEP)];
    entries[i] = `feat:${schemaVersion}:${tag}${kind}:${id}`;
    generations[i] = `feat-gen:${tag}${kind}:${id}`;
  }
  return { entries, generations };
}

/**
 * Entities share SLOT_TAGS.length slots, one every SLOT_STEP of the cluster's 16384: an entity goes to the first
 * slot of the block its own `kind:id` would hash to. A tag per entity would spread them as well, but a request of n
 * ids would then cost n MGETs (one per slot), and a command costs the client far more than a key does: at 500 ids
 * per request on this 2-core machine, a tag per entity read 0.2× as many ids per second as one Redis, 128 shared slots
 * 0.4–0.6× (bench:stores). Evenly spaced, the shared slots split evenly among masters that split the slots evenly.
 */
const SLOT_STEP = 128;

/** `{t}` where CRC16(t) mod 16384 = i × SLOT_STEP, for each block i: the first such decimal string, found once. */
const SLOT_TAGS: string[] = (() => {
  const tags: string[] = new Array(16384 / SLOT_STEP);
  for (let n = 0, found = 0; found < tags.length; n++) {
    const slot = calculateSlot(String(n));
    if (slot % SLOT_STEP === 0 && tags[slot / SLOT_STEP] === undefined) {
      tags[slot / SLOT_STEP] = `{${n}}`;
      found++;
    }
  }
  return tags;
})();
