import { loadConfig } from '@app/config';
import type { RedisConnections, SubscriptionListener } from '@app/redis';

import { MetricsService } from '../platform/metrics.service';
import { FeatureChangeRepository, type FeatureChangeNotice } from './feature-change.repository';
import { UserRowFallback } from './user-rows.fallback';

describe('UserRowFallback', () => {
  /** The features:changed subscription's connection, driven by hand. */
  let redis: SubscriptionListener;
  let changes: FeatureChangeRepository;
  let metrics: MetricsService;
  const onNotice = (notice: FeatureChangeNotice) => changes.publish(notice);
  const onDropped = () => redis.dropped!();
  const onReconnect = () => redis.resubscribed!();

  const fallback = async (entries = '2') => {
    changes = new FeatureChangeRepository({
      subscribe: async (_name: string, _channel: string, listener: SubscriptionListener) => void (redis = listener),
      publish: async () => undefined,
    } as unknown as RedisConnections);
    metrics = new MetricsService();
    const users = new UserRowFallback(loadConfig({ USER_ROW_FALLBACK_ENTRIES: entries }), changes, metrics);
    await users.onModuleInit();
    return users;
  };
  const served = async () =>
    (await metrics.registry.getSingleMetric('user_row_fallback_hits_total')!.get()).values[0].value;

  it("recalls a user's last read features per schema, absence included, and counts each", async () => {
    const users = await fallback();
    users.remember('s1', 'u1', { age: 30 }, users.epoch);
    users.remember('s2', 'u1', { age: 30, city: 'x' }, users.epoch);
    users.remember('s1', 'u2', null, users.epoch);
    expect(users.recall('s1', 'u1')).toEqual({ features: { age: 30 } });
    expect(users.recall('s2', 'u1')).toEqual({ features: { age: 30, city: 'x' } });
    expect(users.recall('s1', 'u2')).toEqual({ features: null });
    expect(users.recall('s3', 'u1')).toBeUndefined();
    expect(await served()).toBe(3);
  });

  it('drops a user whose features are written, and refuses a read that a write overtook', async () => {
    const users = await fallback();
    users.remember('s1', 'u1', { age: 30 }, users.epoch);
    const before = users.epoch;
    await onNotice({ kind: 'user', ids: ['u1'] });
    expect(users.recall('s1', 'u1')).toBeUndefined();
    users.remember('s1', 'u1', { age: 30 }, before);
    expect(users.recall('s1', 'u1')).toBeUndefined();
    await onNotice({ kind: 'item', ids: ['u2'] });
    users.remember('s1', 'u2', { age: 1 }, before);
    expect(users.recall('s1', 'u2')).toBeUndefined();
    onReconnect();
    users.remember('s1', 'u2', { age: 1 }, users.epoch);
    expect(users.recall('s1', 'u2')).toEqual({ features: { age: 1 } });
  });

  it('keeps no user read while the subscription is down, nor one read before the drop and kept after it', async () => {
    const users = await fallback();
    const before = users.epoch;
    onDropped();
    users.remember('s1', 'u1', { age: 30 }, users.epoch);
    expect(users.recall('s1', 'u1')).toBeUndefined();
    const during = users.epoch;
    onReconnect();
    users.remember('s1', 'u1', { age: 30 }, before);
    users.remember('s1', 'u1', { age: 30 }, during);
    expect(users.recall('s1', 'u1')).toBeUndefined();
    users.remember('s1', 'u1', { age: 31 }, users.epoch);
    expect(users.recall('s1', 'u1')).toEqual({ features: { age: 31 } });
  });

  it('keeps the most recently read users up to its capacity; none at 0', async () => {
    const users = await fallback();
    users.remember('s1', 'u1', {}, users.epoch);
    users.remember('s1', 'u2', {}, users.epoch);
    users.remember('s1', 'u1', { again: 1 }, users.epoch);
    users.remember('s1', 'u3', {}, users.epoch);
    expect(['u1', 'u2', 'u3'].map((id) => users.recall('s1', id) !== undefined)).toEqual([true, false, true]);

    const none = await fallback('0');
    none.remember('s1', 'u1', {}, none.epoch);
    expect(none.recall('s1', 'u1')).toBeUndefined();
  });
});
