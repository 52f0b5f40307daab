import { Injectable, Logger } from '@nestjs/common';

import { isDatabaseUnavailable, type FeatureMap } from '@app/db';
import { assembleRequest, encodeSlice, overlaySlices, type EncodedSlice, type RequestBatch } from '@app/mmoe/serving';

import { FeatureStoreService } from '../features/feature-store.service';
import type { ServingModel } from '../models/serving-model';
import { ItemRowCache, type CachedItem } from './item-rows.cache';
import type { FeatureCacheOutcome } from './scoring.metrics';

/** What a score request asks for, as far as its rows are concerned. */
export interface RowsRequest {
  userId: string;
  itemIds: string[];
  context?: Record<string, unknown>;
}

export interface CandidateFeatures {
  user?: FeatureMap;
  /** Per candidate, in request order; `slice` undefined for an item with no stored features. */
  items: CachedItem[];
  featureCache: FeatureCacheOutcome;
}

export interface AssembledRequest extends CandidateFeatures {
  batch: RequestBatch;
}

/**
 * One request's rows for one model, the same way for whoever scores it (the served request, the shadow's replay):
 *   features   the candidates' encoded rows from this process's cache for that version; the user and the misses in
 *              one round trip to the feature store (Redis, then Postgres), misses encoded once and cached;
 *   assembly   the user's slice over the request context's once, each candidate's item-side columns.
 * `onFeatures` is called between the two (the scoring stage timer).
 */
@Injectable()
export class RequestAssembler {
  private readonly logger = new Logger(RequestAssembler.name);
  /** `version:feature` pairs already reported as holding non-numeric values, so that a bad row logs once. */
  private readonly reportedBadValues = new Set<string>();

  constructor(
    private readonly featureStore: FeatureStoreService,
    private readonly itemRows: ItemRowCache,
  ) {}

  async assemble(model: ServingModel, request: RowsRequest, onFeatures?: () => void): Promise<AssembledRequest> {
    const features = await this.candidateFeatures(model, request.userId, request.itemIds);
    onFeatures?.();
    const shared = overlaySlices(this.slice(model, request.context), this.slice(model, features.user));
    const batch = assembleRequest(
      model.sides,
      shared,
      features.items.map((item) => item.slice),
    );
    return { ...features, batch };
  }

  /**
   * When Postgres cannot answer for what Redis does not hold (both down, or Redis restarted empty), what this
   * process holds in memory past its TTL scores the request rather than a 503 (stale rows, counted); only what it
   * does not hold at all still fails.
   */
  private async candidateFeatures(model: ServingModel, userId: string, itemIds: string[]): Promise<CandidateFeatures> {
    try {
      return await this.readFeatures(model, userId, itemIds, false);
    } catch (e) {
      if (!isDatabaseUnavailable(e)) throw e;
      return this.readFeatures(model, userId, itemIds, true);
    }
  }

  private async readFeatures(
    model: ServingModel,
    userId: string,
    itemIds: string[],
    stale: boolean,
  ): Promise<CandidateFeatures> {
    const lookup = this.itemRows.lookup(model.versionId, itemIds, stale);
    const missIds = lookup.misses.map((i) => itemIds[i]);
    const fetched = await this.featureStore.fetch(
      { version: model.featureSchemaVersion, featureNames: model.featureNames },
      userId,
      missIds,
      { stale },
    );
    const fills = lookup.misses.map((position, k) => {
      const features = fetched.items[k];
      const item: CachedItem = { slice: features && this.slice(model, features) };
      lookup.items[position] = item;
      return { id: missIds[k], item };
    });
    this.itemRows.store(model.versionId, lookup, fills);
    return {
      user: fetched.user,
      items: lookup.items as CachedItem[],
      featureCache: { hits: fetched.cacheHits, misses: fetched.cacheMisses, unavailable: fetched.cacheUnavailable },
    };
  }

  /** A stored value of the wrong type (a string in a numeric feature) is scored as missing rather than failing the request. */
  private slice(model: ServingModel, record: Record<string, unknown> | undefined): EncodedSlice {
    const { slice, unreadable } = encodeSlice(model.encoder, record);
    for (const feature of unreadable) {
      const key = `${model.versionId}:${feature}`;
      if (this.reportedBadValues.has(key)) continue;
      this.reportedBadValues.add(key);
      this.logger.warn(
        `model ${model.versionId}: stored values of feature "${feature}" cannot be read as its type; they are scored as missing`,
      );
    }
    return slice;
  }
}
