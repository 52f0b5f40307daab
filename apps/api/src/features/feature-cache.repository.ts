import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { ChainableCommander, Redis } from 'ioredis';

import { APP_CONFIG, type AppConfig } from '@app/config';
import type { EntityKind, FeatureMap } from '@app/db';
import { CACHE_REDIS, REDIS } from '@app/redis';

import { CircuitBreaker } from './circuit-breaker';

export interface EntityRef {
  kind: EntityKind;
  id: string;
}

/** A cached projection (null: the entity is known not to exist), or a miss with what fill() needs. */
export type CacheLookup = { hit: true; features: FeatureMap | null } | { hit: false; generation: string };

export interface CacheFill {
  entity: EntityRef;
  /** From the miss this fills: a write since then makes the filled entry invalid. */
  generation: string;
  features: FeatureMap | null;
}

/**
 * Redis cache of feature projections.
 *
 * Layout: `feat:{schemaVersion}:{kind}:{id}` holds `{generation}|{json}` (the features one schema names, or `null`
 * for an entity stored nowhere), and `feat-gen:{kind}:{id}` holds the entity's generation, a random token replaced at
 * every write. An entry counts only if its generation is the current one, so a write invalidates the entity's entries
 * under every schema version with one SET, with no list of schema versions to keep, and a read that raced the write
 * (Postgres read before it, Redis fill after it) fills an entry that is already invalid instead of one stale for the
 * TTL. Reads fetch entries and generations with one MGET. Generations outlive the entries written under them (twice
 * the longest entry TTL), so an expired generation can never revive an older entry.
 *
 * Reads and fills never fail: while Redis is unreachable (breaker open, BREAKER_OPEN_MS after a failure) a read is
 * all misses, so that scoring reads Postgres, and fills are skipped. Invalidation goes through the shared connection,
 * which waits and retries rather than fail fast (a 10,000-entity write is one big pipeline), and does fail when Redis
 * is down, since skipping it would leave stale entries behind.
 */
@Injectable()
export class FeatureCacheRepository {
  private readonly breaker = new CircuitBreaker(BREAKER_OPEN_MS);

  constructor(
    @Inject(CACHE_REDIS) private readonly redis: Redis,
    @Inject(REDIS) private readonly writes: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** One round trip for all entities, in their order; all misses when Redis cannot answer. */
  read(schemaVersion: string, entities: EntityRef[]): Promise<CacheLookup[]> {
    // A miss with no generation fills an entry that counts only while the entity has no generation key: never stale.
    return this.breaker.run(
      () => this.readRedis(schemaVersion, entities),
      () => entities.map(() => ({ hit: false, generation: '' })),
    );
  }

  async fill(schemaVersion: string, fills: CacheFill[]): Promise<void> {
    await this.breaker.run(
      () => this.fillRedis(schemaVersion, fills),
      () => undefined,
    );
  }

  private async readRedis(schemaVersion: string, entities: EntityRef[]): Promise<CacheLookup[]> {
    const keys = entities.map((e) => entryKey(schemaVersion, e));
    for (const e of entities) keys.push(generationKey(e));
    const values = await this.redis.mget(keys);
    return entities.map((_, i) => {
      const entry = values[i];
      const generation = values[entities.length + i] ?? '';
      if (entry === null || !entry.startsWith(`${generation}|`)) return { hit: false, generation };
      return { hit: true, features: JSON.parse(entry.slice(generation.length + 1)) as FeatureMap | null };
    });
  }

  private async fillRedis(schemaVersion: string, fills: CacheFill[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    // Made-up ids must not grow Redis without bound: past the cap, absences are simply read from Postgres next time.
    let absences = this.config.FEATURE_NEGATIVE_CACHE_PER_REQUEST;
    for (const { entity, generation, features } of fills) {
      if (features === null && absences-- <= 0) continue;
      const ttl =
        features === null ? this.config.FEATURE_NEGATIVE_CACHE_TTL_SECONDS : this.config.FEATURE_CACHE_TTL_SECONDS;
      pipeline.set(entryKey(schemaVersion, entity), `${generation}|${JSON.stringify(features)}`, 'EX', ttl);
    }
    await execOrThrow(pipeline);
  }

  /** Makes every cached entry of these entities invalid, whatever its schema version. */
  async invalidate(kind: EntityKind, ids: string[]): Promise<void> {
    // base64url never contains the `|` separator.
    const generation = randomBytes(9).toString('base64url');
    const ttl = 2 * Math.max(this.config.FEATURE_CACHE_TTL_SECONDS, this.config.FEATURE_NEGATIVE_CACHE_TTL_SECONDS);
    const pipeline = this.writes.pipeline();
    for (const id of ids) pipeline.set(generationKey({ kind, id }), generation, 'EX', ttl);
    await execOrThrow(pipeline);
  }
}

/** Long enough to spare the requests of an outage a failed attempt each, short enough to be back within 2 s. */
const BREAKER_OPEN_MS = 1000;

function entryKey(schemaVersion: string, { kind, id }: EntityRef): string {
  return `feat:${schemaVersion}:${kind}:${id}`;
}

function generationKey({ kind, id }: EntityRef): string {
  return `feat-gen:${kind}:${id}`;
}

/** A pipeline reports failed commands in its results instead of rejecting. */
async function execOrThrow(pipeline: ChainableCommander): Promise<void> {
  const failed = (await pipeline.exec())?.find(([error]) => error);
  if (failed) throw failed[0];
}
