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
  /** The database's record: feeds filled, and feeds a change has marked to fill again. */
  let filled: Set<string>;
  let reset: Set<string>;
  let backfill: jest.Mock;
  let unfilled: jest.Mock;
  let service: FedListBackfill;

  beforeEach(() => {
    jest.useFakeTimers();
    filled = new Set();
    reset = new Set();
    backfill = jest.fn(async (feed: EventFeed) => {
      const key = feedKey(feed);
      if (filled.has(key) && !reset.has(key)) return 'filled';
      filled.add(key);
      reset.delete(key);
      return { users: 2 };
    });
    unfilled = jest.fn(async (feeds: EventFeed[]) => feeds.filter((f) => reset.has(feedKey(f))));
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
    filled.clear();
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(1);
  });

  it('fills again a feed it knew filled once the database says it is to fill (served again, unnoticed)', async () => {
    service.onApplicationBootstrap();
    await service.settled();
    // A change stopped serving it and another served it again: the record reset, this process's versions the same.
    for (const key of filled) reset.add(key);
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(2);
    expect(reset.size).toBe(0);
  });

  it('looks again a minute later at a feed another process was filling, and at one whose fill failed', async () => {
    backfill.mockResolvedValueOnce('busy').mockRejectedValueOnce(new Error('connection lost'));
    service.onApplicationBootstrap();
    await service.settled();
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(2);
    await nextCheck();
    expect(backfill).toHaveBeenCalledTimes(3);
    expect(filled.size).toBe(1);
  });
});
