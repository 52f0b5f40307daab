import { feedKey, type EventFeed, type EventRepository } from '@app/db';
import { parseModelSpec } from '@app/mmoe';

import type { FeatureStoreService } from '../features/feature-store.service';
import type { MetricsService } from '../platform/metrics.service';
import { FedListBackfill } from './fed-list-backfill.service';
import type { ProductionSpecSource } from './production-spec.source';

/** A spec whose user list is fed by click events. */
const SPEC = parseModelSpec({
  features: [
    { name: 'item_id', type: 'categorical', embeddingDim: 4 },
    { name: 'user_recent_clicks', type: 'sequence', side: 'user', maxLength: 5, fromEvents: { task: 'click' } },
  ],
  tasks: [{ name: 'click', label: 'click', type: 'binary' }],
  model: { architecture: 'mmoe', experts: 2, expertUnits: [4], towerUnits: [4] },
});

describe('FedListBackfill', () => {
  /** event_feed_backfills: whether each recorded feed is filled (a change that stops serving one deletes it). */
  let records: Map<string, boolean>;
  let backfill: jest.Mock;
  let unfilled: jest.Mock;
  let service: FedListBackfill;

  beforeEach(() => {
    jest.useFakeTimers();
    records = new Map();
    backfill = jest.fn(async (feed: EventFeed) => {
      const key = feedKey(feed);
      if (records.get(key)) return 'filled';
      records.set(key, true);
      return { users: 2 };
    });
    unfilled = jest.fn(async (feeds: EventFeed[]) => feeds.filter((f) => records.get(feedKey(f)) === false));
    const served = { served: () => [{ id: 1, spec: SPEC }], onChange: () => undefined };
    service = new FedListBackfill(
      { backfill, unfilled } as unknown as EventRepository,
      { invalidate: async () => undefined } as unknown as FeatureStoreService,
      served as unknown as ProductionSpecSource,
      { outcomeCounter: () => () => undefined } as unknown as MetricsService,
    );
  });

  afterEach(async () => {
    await service.onModuleDestroy();
    jest.useRealTimers();
  });

  /** Runs the minute's check and what it started. */
  const nextCheck = async () => {
    await jest.advanceTimersByTimeAsync(60_000);
    await service.settled();
  };

  it('fills a served feed once, then only asks the database each minute whether it is still filled', async () => {
    service.onApplicationBootstrap();
    await service.settled();
    expect(backfill).toHaveBeenCalledTimes(1);
    await nextCheck();
    expect(unfilled).toHaveBeenCalledTimes(1);
    expect(backfill).toHaveBeenCalledTimes(1);
    // Forgotten (a change stopped serving it, which this process has not loaded yet): not filled again.
    records.clear();
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(1);
  });

  it('fills again a feed it knew filled once the database says it is to fill (served again, unnoticed)', async () => {
    service.onApplicationBootstrap();
    await service.settled();
    // A change stopped serving it and another served it again: the record reset, this process's versions the same.
    for (const key of records.keys()) records.set(key, false);
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(2);
    expect([...records.values()]).toEqual([true]);
  });

  it('does not fill a feed it left busy once a change has stopped serving it, before it loads that change', async () => {
    backfill.mockImplementationOnce(async (feed: EventFeed) => {
      records.set(feedKey(feed), false);
      return 'busy' as const;
    });
    service.onApplicationBootstrap();
    await service.settled();
    records.clear(); // the change deleted its record; this process still serves it
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(1);
  });

  it('looks again a minute later at a feed another process was filling, and at one whose fill failed', async () => {
    // Recorded to fill (its row inserted by the first try), but not filled by this process.
    const leftToFill = async (feed: EventFeed) => {
      records.set(feedKey(feed), false);
      return 'busy' as const;
    };
    backfill.mockImplementationOnce(leftToFill).mockImplementationOnce(async (feed: EventFeed) => {
      records.set(feedKey(feed), false);
      throw new Error('connection lost');
    });
    service.onApplicationBootstrap();
    await service.settled();
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(2);
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(3);
    expect([...records.values()]).toEqual([true]);
  });
});
