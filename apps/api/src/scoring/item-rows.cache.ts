import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';

import { APP_CONFIG, type AppConfig } from '@app/config';
import type { EncodedSlice } from '@app/mmoe/serving';

import { FeatureChangeRepository, type FeatureChangeNotice } from '../features/feature-change.repository';
import { ModelLifecycleService } from '../models/model-lifecycle.service';
import { MetricsService } from '../platform/metrics.service';

/** A cached item: its encoded slice, or none for an item stored nowhere (scored with defaults, flagged unknown). */
export interface CachedItem {
  slice?: EncodedSlice;
}

/**
 * Items whose last write is remembered, for the fills of lookups made before it (a few MB); past it the oldest are
 * forgotten, and every fill of a lookup made before a forgotten write is dropped.
 */
const REMEMBERED_WRITES = 100_000;

interface Entry extends CachedItem {
  expiresAt: number;
  /** Read since it was stored or last spared: an eviction spares it once (second chance), and clears this. */
  used: boolean;
}

/** What a lookup found: the cached items in request order (undefined = miss), and the misses' positions. */
export interface ItemLookup {
  items: (CachedItem | undefined)[];
  misses: number[];
  /** Hand back to store(): a fill of an item written since the lookup may hold the overwritten values, so it is dropped. */
  epoch: number;
}

/**
 * In-process cache of encoded item slices, least recently used out (approximately: second chance), one per served
 * model version (the encoding depends on the version's vocabularies and statistics, not only on its feature names).
 * Filled from the feature store's reads; an item's entries go on every write of its features, in every process (the
 * `features:changed` notice), and on a TTL as a backstop for a lost notice; past its TTL an entry is read again, but
 * it still scores its item while neither Redis nor Postgres can answer (see lookup). A hit costs a Map lookup and no
 * Redis key, no JSON, no encoding, and marks its entry used rather than moving it to the end of the Map: moving 500
 * entries per request (a delete and a set each) made V8 rebuild the Map's table every other request (27 kB of garbage
 * per request in V8's sampling heap profiler, 1,000 requests of 500 candidates). Eviction walks the Map from its
 * oldest insertion, sparing once (moved to the end, the mark cleared) each entry used since.
 */
@Injectable()
export class ItemRowCache implements OnModuleInit {
  private readonly logger = new Logger(ItemRowCache.name);
  private readonly byVersion = new Map<number, Map<string, Entry>>();
  /** Bumped by every notice: a fill from a read that started before it may hold the overwritten values. */
  private epoch = 0;
  /**
   * The epoch of each remembered item's last write, the oldest first. Only those fills go, not every fill in flight:
   * with a stream of catalogue writes, dropping them all would keep the cache from filling.
   */
  private readonly written = new Map<string, number>();
  /** A lookup made before this epoch may have missed a write no longer remembered (or a lost notice): no fill of it. */
  private floor = 0;
  private readonly hits: Counter;
  private readonly misses: Counter;
  private readonly staleHits: Counter;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly changes: FeatureChangeRepository,
    private readonly lifecycle: ModelLifecycleService,
    metrics: MetricsService,
  ) {
    const registers = [metrics.registry];
    this.hits = new Counter({
      name: 'item_row_cache_hits_total',
      help: 'Candidates found encoded in memory',
      registers,
    });
    this.misses = new Counter({
      name: 'item_row_cache_misses_total',
      help: 'Candidates read from the feature store and encoded',
      registers,
    });
    this.staleHits = new Counter({
      name: 'item_row_cache_stale_hits_total',
      help: 'Candidates scored from an encoded row past its TTL, while Redis and Postgres could not answer',
      registers,
    });
    const entries = () => [...this.byVersion.values()].reduce((n, lru) => n + lru.size, 0);
    const { hits, misses } = this;
    metrics.scrapedGauge('item_row_cache_entries', 'Encoded items held in memory, over every served version', entries);
    new Gauge({
      name: 'item_row_cache_hit_ratio',
      help: 'Share of candidates found encoded in memory since the process started',
      registers,
      async collect() {
        const [hit, missed] = await Promise.all([hits.get(), misses.get()]);
        const total = hit.values[0].value + missed.values[0].value;
        this.set(total === 0 ? 0 : hit.values[0].value / total);
      },
    });
  }

  async onModuleInit(): Promise<void> {
    if (this.config.ITEM_ROW_CACHE_ENTRIES === 0) return;
    await this.changes
      .subscribe({
        onNotice: (notice) => this.invalidate(notice),
        // Until the subscription is back, a write would go unheard: no row is trusted (each is read again) or stored;
        // once back, notices may have been lost.
        onDropped: () => this.expireAll(),
        onReconnect: () => this.expireAll(),
      })
      .catch((e: Error) =>
        this.logger.warn(
          `no features:changed subscription (${e.message}); encoded items are not cached until it is made`,
        ),
      );
  }

  /**
   * With `stale` (the feature store could not answer a first time: Redis and Postgres both down), an entry past its
   * TTL counts too: an expired entry stays in the LRU until evicted or dropped by a write, and scoring from it beats
   * failing. Such a lookup counts stale hits only (the first one counted this request's hits and misses).
   */
  lookup(versionId: number, itemIds: string[], stale = false): ItemLookup {
    const items: (CachedItem | undefined)[] = new Array(itemIds.length);
    const misses: number[] = [];
    const lru = this.byVersion.get(versionId);
    const now = Date.now();
    let expired = 0;
    for (let i = 0; i < itemIds.length; i++) {
      const entry = lru?.get(itemIds[i]);
      if (entry && (entry.expiresAt > now || stale)) {
        if (entry.expiresAt <= now) expired++;
        entry.used = true;
        items[i] = entry;
      } else misses.push(i);
    }
    if (stale) this.staleHits.inc(expired);
    else {
      this.hits.inc(itemIds.length - misses.length);
      this.misses.inc(misses.length);
    }
    return { items, misses, epoch: this.epoch };
  }

  store(versionId: number, lookup: ItemLookup, fills: { id: string; item: CachedItem }[]): void {
    const capacity = this.config.ITEM_ROW_CACHE_ENTRIES;
    // Nothing is cached while notices are not received (not yet, dropped, or never): a row could outlive a write.
    if (!this.changes.listening || capacity === 0) return;
    let lru = this.byVersion.get(versionId);
    if (!lru) {
      this.dropUnserved();
      this.byVersion.set(versionId, (lru = new Map()));
    }
    const expiresAt = Date.now() + this.config.ITEM_ROW_CACHE_TTL_SECONDS * 1000;
    const since = lookup.epoch !== this.epoch ? lookup.epoch : undefined;
    for (const { id, item } of fills) {
      if (since !== undefined && this.writtenSince(since, id)) continue;
      lru.delete(id);
      lru.set(id, { ...item, expiresAt, used: false });
    }
    // A Map iterates in insertion order (the oldest first) and visits what is moved to its end during the walk: every
    // entry is spared at most once, so the walk ends within two rounds.
    for (const [id, entry] of lru) {
      if (lru.size <= capacity) break;
      lru.delete(id);
      if (entry.used) {
        entry.used = false;
        lru.set(id, entry);
      }
    }
  }

  /** A new version is being cached: the caches of versions that left serving go. */
  private dropUnserved(): void {
    const { production, canary, shadow } = this.lifecycle.current();
    const served = new Set([production?.versionId, canary?.versionId, shadow?.versionId]);
    for (const versionId of this.byVersion.keys()) if (!served.has(versionId)) this.byVersion.delete(versionId);
  }

  private invalidate({ kind, ids }: FeatureChangeNotice): void {
    if (kind !== 'item') return;
    this.noteWritten(ids);
    for (const lru of this.byVersion.values()) for (const id of ids) lru.delete(id);
  }

  /** A new epoch in which `ids` were written (null: any item may have been, notices were lost). */
  private noteWritten(ids: readonly string[] | null): void {
    this.epoch++;
    if (ids === null) {
      this.written.clear();
      this.floor = this.epoch;
      return;
    }
    for (const id of ids) {
      this.written.delete(id);
      this.written.set(id, this.epoch);
    }
    for (const [id, epoch] of this.written) {
      if (this.written.size <= REMEMBERED_WRITES) break;
      this.written.delete(id);
      this.floor = epoch;
    }
  }

  /** Whether `id` may have been written since the lookup made at `epoch`: one Map lookup a fill. */
  private writtenSince(epoch: number, id: string): boolean {
    return epoch < this.floor || (this.written.get(id) ?? 0) > epoch;
  }

  /**
   * Notices may have been lost (the subscription dropped): every entry is read again before it scores, yet kept for
   * an outage of both stores, when a row that may be stale is still better than none.
   */
  private expireAll(): void {
    this.noteWritten(null);
    for (const lru of this.byVersion.values()) for (const entry of lru.values()) entry.expiresAt = 0;
  }
}
