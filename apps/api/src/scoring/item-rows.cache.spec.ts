import { loadConfig } from '@app/config';
import type { EncodedSlice } from '@app/mmoe/serving';
import type { RedisConnections, SubscriptionListener } from '@app/redis';

import { FeatureChangeRepository } from '../features/feature-change.repository';
import type { ModelLifecycleService } from '../models/model-lifecycle.service';
import { MetricsService } from '../platform/metrics.service';
import { ItemRowCache, type CachedItem } from './item-rows.cache';

/** The features:changed subscription, its connection driven by hand. */
class Notices {
  redis!: SubscriptionListener;
  readonly changes = new FeatureChangeRepository({
    subscribe: async (_name: string, _channel: string, listener: SubscriptionListener) => void (this.redis = listener),
    publish: async () => undefined,
  } as unknown as RedisConnections);
}

describe('ItemRowCache past the TTL', () => {
  const VERSION = 1;
  let now: number;
  let notices: Notices;
  let metrics: MetricsService;
  let cache: ItemRowCache;

  const row = (id: string): CachedItem => ({ slice: { id } as unknown as EncodedSlice });
  const fill = (...ids: string[]) => {
    const lookup = cache.lookup(VERSION, ids);
    cache.store(
      VERSION,
      lookup,
      ids.map((id) => ({ id, item: row(id) })),
    );
  };
  const found = (ids: string[], stale = false) =>
    Array.from(cache.lookup(VERSION, ids, stale).items, (item) =>
      item ? (item.slice as unknown as { id: string }).id : null,
    );
  const counter = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0].value;

  beforeEach(async () => {
    now = Date.parse('2026-01-01T00:00:00Z');
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    notices = new Notices();
    metrics = new MetricsService();
    const lifecycle = { current: () => ({ production: { versionId: VERSION } }) } as unknown as ModelLifecycleService;
    cache = new ItemRowCache(
      loadConfig({ ITEM_ROW_CACHE_ENTRIES: '3', ITEM_ROW_CACHE_TTL_SECONDS: '60' }),
      notices.changes,
      lifecycle,
      metrics,
    );
    await cache.onModuleInit();
  });

  afterEach(() => jest.restoreAllMocks());

  it('misses an expired row, unless the lookup may be stale, which counts it apart', async () => {
    fill('a', 'b');
    now += 61_000;
    fill('b');
    expect(found(['a', 'b', 'c'])).toEqual([null, 'b', null]);
    expect(found(['a', 'b', 'c'], true)).toEqual(['a', 'b', null]);
    expect(await counter('item_row_cache_stale_hits_total')).toBe(1);
    // The stale lookup is a second look for the same request: hits and misses were counted by the first (the fills
    // missed a, b, then b; the plain lookup hit b and missed a and c).
    expect(await counter('item_row_cache_hits_total')).toBe(1);
    expect(await counter('item_row_cache_misses_total')).toBe(5);
  });

  it('drops a written item, stale or not, but keeps the rows a lost notice may concern for an outage', async () => {
    fill('a', 'b');
    await notices.changes.publish({ kind: 'item', ids: ['a'] });
    expect(found(['a'], true)).toEqual([null]);

    notices.redis.resubscribed!();
    expect(found(['b'])).toEqual([null]);
    expect(found(['b'], true)).toEqual(['b']);
  });

  it('drops the fills of items written since their lookup, and keeps the others', async () => {
    const before = cache.lookup(VERSION, ['a', 'b']);
    await notices.changes.publish({ kind: 'item', ids: ['a'] });
    cache.store(VERSION, before, [
      { id: 'a', item: row('a') },
      { id: 'b', item: row('b') },
    ]);
    expect(found(['a', 'b'])).toEqual([null, 'b']);
    // A lookup older than a write no longer remembered (100,000 items are): every fill of it goes, not a newer one's.
    const old = cache.lookup(VERSION, ['c']);
    await notices.changes.publish({ kind: 'item', ids: ['forgotten'] });
    const newer = cache.lookup(VERSION, ['d']);
    await notices.changes.publish({ kind: 'item', ids: Array.from({ length: 100_000 }, (_, i) => `other-${i}`) });
    cache.store(VERSION, old, [{ id: 'c', item: row('c') }]);
    cache.store(VERSION, newer, [{ id: 'd', item: row('d') }]);
    expect(found(['c', 'd'])).toEqual([null, 'd']);
  });

  it('trusts no row and caches none while the subscription is down, and again once it is back', () => {
    fill('a');
    const during = cache.lookup(VERSION, ['b']);
    notices.redis.dropped!();
    expect(found(['a'])).toEqual([null]); // a write meanwhile would go unheard: read again
    expect(found(['a'], true)).toEqual(['a']); // still there for an outage of both stores
    fill('c');
    expect(found(['c'], true)).toEqual([null]);

    notices.redis.resubscribed!();
    cache.store(VERSION, during, [{ id: 'b', item: row('b') }]); // read before the drop: may have missed a write
    fill('d');
    expect(found(['a', 'b', 'd'])).toEqual([null, null, 'd']);
  });

  it('stays bounded: past its capacity the least recently used row goes, expired or not', () => {
    fill('a', 'b', 'c');
    now += 61_000;
    found(['a'], true);
    fill('d');
    expect(found(['a', 'b', 'c', 'd'], true)).toEqual(['a', null, 'c', 'd']);
  });
});
