import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

export type EntityKind = 'user' | 'item';
/** Lists are the values of sequence features (a history, tags). */
export type FeatureValue = number | string | boolean | null | string[];
export type FeatureMap = Record<string, FeatureValue>;

export interface FeatureRow {
  id: string;
  features: FeatureMap;
}

const TABLES: Record<EntityKind, string> = { user: 'user_features', item: 'item_features' };

/** The feature vectors of users and items in Postgres, their source of truth (Redis only caches them). */
@Injectable()
export class FeatureRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Replaces each entity's features (PUT semantics). One statement whatever the batch size (the rows travel as one
   * jsonb parameter, clear of the 65,535-parameter limit), so a batch is stored whole or not at all. Ids must be unique
   * within a batch; rows are locked in id order so that concurrent overlapping batches cannot deadlock. A user's
   * event-fed lists (those with a head in fed_heads) are the events', not the writer's: one the write does not name is
   * kept, as a nightly write of the profile would otherwise empty every list until the user's next click (and serve
   * what training, which rebuilds lists from events, never saw); one it names is the writer's, its head cleared, so
   * the next event rebuilds it.
   */
  async upsert(kind: EntityKind, rows: FeatureRow[]): Promise<void> {
    const set =
      kind === 'user'
        ? `features = COALESCE((SELECT jsonb_object_agg(f.key, f.value) FROM jsonb_each(user_features.features) f
                                WHERE user_features.fed_heads ? f.key), '{}') || EXCLUDED.features,
           fed_heads = user_features.fed_heads - ARRAY(SELECT jsonb_object_keys(EXCLUDED.features))`
        : 'features = EXCLUDED.features';
    await this.dataSource.query(
      `INSERT INTO ${TABLES[kind]} (entity_id, features, updated_at)
       SELECT id, features, now() FROM jsonb_to_recordset($1::jsonb) AS r(id text, features jsonb) ORDER BY id
       ON CONFLICT (entity_id) DO UPDATE SET ${set}, updated_at = EXCLUDED.updated_at`,
      [JSON.stringify(rows)],
    );
  }

  /** The stored features of the given users and items, in one query; ids stored nowhere are absent from the maps. */
  async findMany(ids: Record<EntityKind, string[]>): Promise<Record<EntityKind, Map<string, FeatureMap>>> {
    const rows: { kind: EntityKind; entity_id: string; features: FeatureMap }[] = await this.dataSource.query(
      `SELECT 'user' AS kind, entity_id, features FROM user_features WHERE entity_id = ANY($1::text[])
       UNION ALL
       SELECT 'item' AS kind, entity_id, features FROM item_features WHERE entity_id = ANY($2::text[])`,
      [ids.user, ids.item],
    );
    const found: Record<EntityKind, Map<string, FeatureMap>> = { user: new Map(), item: new Map() };
    for (const row of rows) found[row.kind].set(row.entity_id, row.features);
    return found;
  }
}
