import { Injectable, Logger } from '@nestjs/common';

import { InvalidFieldsError } from '@app/common';
import { FeatureRepository, type EntityKind, type FeatureMap, type FeatureRow } from '@app/db';

import type { FeaturesWrittenDto } from './dto/features.dto';
import { FeatureCacheRepository, type CacheFill, type EntityRef } from './feature-cache.repository';
import { FeatureChangeRepository } from './feature-change.repository';
import { UserRowFallback } from './user-rows.fallback';

/** The features a model reads: its feature-schema version (the cache namespace) and the names it projects onto. */
export interface FeatureSchemaRef {
  version: string;
  featureNames: readonly string[];
}

export interface FetchedFeatures {
  /** Undefined when the user is stored nowhere. */
  user?: FeatureMap;
  /** In the order of the requested ids; undefined for an item stored nowhere. */
  items: (FeatureMap | undefined)[];
  /** Entities (the user and each item) answered by Redis, including cached absences. */
  cacheHits: number;
  /** Entities read from Postgres. */
  cacheMisses: number;
  /** Of those, the ones whose Redis node could not answer (the degraded mode), rather than not cached. */
  cacheUnavailable: number;
}

/** The feature store: Postgres is the source of truth, Redis a read-through cache of each schema's projection. */
@Injectable()
export class FeatureStoreService {
  private readonly logger = new Logger(FeatureStoreService.name);

  constructor(
    private readonly store: FeatureRepository,
    private readonly cache: FeatureCacheRepository,
    private readonly changes: FeatureChangeRepository,
    private readonly lastRead: UserRowFallback,
  ) {}

  putOne(kind: EntityKind, id: string, features: FeatureMap): Promise<FeaturesWrittenDto> {
    return this.write(kind, [{ id, features }]);
  }

  async putMany(kind: EntityKind, rows: FeatureRow[]): Promise<FeaturesWrittenDto> {
    const first = new Map<string, number>();
    const duplicates = rows.flatMap(({ id }, i) => {
      const j = first.get(id);
      if (j === undefined) first.set(id, i);
      return j === undefined
        ? []
        : [
            {
              field: `entities.${i}.id`,
              message: `entities.${i}.id repeats entities.${j}.id (ids must be unique within a call)`,
            },
          ];
    });
    if (duplicates.length > 0) throw new InvalidFieldsError(duplicates);
    return this.write(kind, rows);
  }

  /**
   * The user's and the items' features, projected onto the schema's names: one Redis round trip for all of them
   * (one per node, in parallel, on a cluster), one Postgres query for the misses, which are then cached (absences
   * too, briefly) without holding up the caller. With `stale` (Postgres could not answer a first time), a user Redis
   * does not hold is taken from what this process last read of it (UserRowFallback), if it kept that, rather than
   * from Postgres.
   */
  async fetch(
    schema: FeatureSchemaRef,
    userId: string,
    itemIds: string[],
    { stale = false } = {},
  ): Promise<FetchedFeatures> {
    const entities: EntityRef[] = [
      { kind: 'user', id: userId },
      ...itemIds.map((id): EntityRef => ({ kind: 'item', id })),
    ];
    const epoch = this.lastRead.epoch;
    const cached = await this.cache.read(schema.version, entities);
    const features: (FeatureMap | undefined)[] = new Array(entities.length);
    const misses: { index: number; generation: string }[] = [];
    const recalled = !cached[0].hit && stale ? this.lastRead.recall(schema.version, userId) : undefined;
    let unavailable = 0;
    cached.forEach((lookup, index) => {
      if (lookup.hit) features[index] = lookup.features ?? undefined;
      else if (index === 0 && recalled) features[0] = recalled.features ?? undefined;
      else {
        misses.push({ index, generation: lookup.generation });
        if (lookup.unavailable) unavailable++;
      }
    });
    if (misses.length > 0) {
      const ids: Record<EntityKind, string[]> = { user: [], item: [] };
      for (const { index } of misses) ids[entities[index].kind].push(entities[index].id);
      const stored = await this.store.findMany(ids);
      const fills = misses.map(({ index, generation }): CacheFill => {
        const entity = entities[index];
        const found = stored[entity.kind].get(entity.id);
        features[index] = found && project(found, schema.featureNames);
        return { entity, generation, features: features[index] ?? null };
      });
      // Not awaited: the fill is queued on the connection before this returns, so any later read on it sees the fill.
      this.cache
        .fill(schema.version, fills)
        .catch((error: Error) => this.logger.warn(`feature cache fill failed: ${error.message}`));
    }
    // What an outage of both stores would score this user from.
    if (!recalled) this.lastRead.remember(schema.version, userId, features[0] ?? null, epoch);
    const [user, ...items] = features;
    const cacheHits = entities.length - misses.length - (recalled ? 1 : 0);
    return { user, items, cacheHits, cacheMisses: misses.length, cacheUnavailable: unavailable };
  }

  /**
   * Postgres first (the source of truth), then the Redis cache, then every API process's in-memory rows, so that
   * the next read goes to the new values. Should a cache step fail, the call fails and can simply be repeated.
   */
  private async write(kind: EntityKind, rows: FeatureRow[]): Promise<FeaturesWrittenDto> {
    await this.store.upsert(kind, rows);
    await this.invalidate(
      kind,
      rows.map((r) => r.id),
    );
    return { written: rows.length };
  }

  /**
   * After the entities' features changed in Postgres (a write here, lists fed by events): the Redis cache, then every
   * API process's in-memory rows, so that the next read sees the change. Fails when Redis does.
   */
  async invalidate(kind: EntityKind, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.cache.invalidate(kind, ids);
    await this.changes.publish({ kind, ids });
  }
}

/** Only the features a schema reads are cached and returned. */
function project(features: FeatureMap, names: readonly string[]): FeatureMap {
  const projected: FeatureMap = {};
  for (const name of names) if (Object.hasOwn(features, name)) projected[name] = features[name];
  return projected;
}
