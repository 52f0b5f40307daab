import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { PredictionLogModule, ServingStatsRepository } from '@app/db';

import { ServingStatsPublisher } from '../../apps/api/src/live/serving-stats.publisher';
import type { ModelLifecycleService } from '../../apps/api/src/models/model-lifecycle.service';
import { LATENCY_BUCKETS, MetricsService } from '../../apps/api/src/platform/metrics.service';
import { ScoringMetrics } from '../../apps/api/src/scoring/scoring.metrics';
import { seedModelVersion } from '../fixtures/model.fixture';
import { createMediumModule } from './medium.module';

/** Every process's serving counts, from its own scoring histograms to the table the rollout policy sums. */
describe('ServingStatsPublisher (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  let dataSource: DataSource;
  let stats: ServingStatsRepository;
  let canary: number;

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [PredictionLogModule] });
    dataSource = moduleRef.get(DataSource);
    stats = moduleRef.get(ServingStatsRepository);
    await dataSource.query('TRUNCATE model_versions, rollout_events CASCADE');
    canary = await seedModelVersion(dataSource, 'canary', { seed: 1 });
  });

  afterAll(async () => {
    await dataSource.query('TRUNCATE model_versions, rollout_events CASCADE');
    await moduleRef.close();
  });

  /** One API process: its metrics registry, its scoring metrics and its publisher; `served`: the versions it serves. */
  function process(served: number[] = [canary, 9999]) {
    const metrics = new MetricsService();
    const scoring = new ScoringMetrics(metrics, { current: () => ({}) } as unknown as ModelLifecycleService);
    const lifecycle = {
      current: () => ({ canary: { versionId: served[0] }, shadow: served[1] && { versionId: served[1] } }),
    } as unknown as ModelLifecycleService;
    const publisher = new ServingStatsPublisher(moduleRef.get<AppConfig>(APP_CONFIG), metrics, stats, lifecycle);
    const serve = (versionId: number, ms: number, failed = false) => {
      const timer = scoring.timer();
      Object.defineProperty(timer, 'startedAt', { value: performance.now() - ms });
      if (failed) scoring.observeFailure({ role: 'canary', versionId }, timer);
      else scoring.observe({ role: 'canary', versionId }, 10, timer, { hits: 0, misses: 0, unavailable: 0 });
    };
    return { publisher, serve, metrics };
  }

  it('adds up what every process counted since its last write, and drops the counts of a version that is gone', async () => {
    const [a, b] = [process(), process()];
    a.serve(canary, 3);
    a.serve(canary, 40, true);
    b.serve(canary, 200);
    b.serve(9999, 3); // no such version
    await a.publisher.publish();
    await b.publisher.publish();
    a.serve(canary, 3);
    await a.publisher.publish();
    await a.publisher.publish(); // nothing new: nothing written twice

    const counts = await stats.since(canary, 'canary', new Date(Date.now() - 60_000));
    expect(counts).toMatchObject({ requests: 4, errors: 1 });
    const bucket = (seconds: number) => LATENCY_BUCKETS.findIndex((b) => b >= seconds);
    const expected = new Array(LATENCY_BUCKETS.length + 1).fill(0);
    for (const ms of [3, 40, 200, 3]) expected[bucket(ms / 1000)]++;
    expect(counts!.latency).toEqual(expected);
    expect(await stats.since(9999, 'canary', new Date(0))).toBeUndefined();
  });

  it("drops a retired version's series once its counts are written, and counts a late request from 0", async () => {
    const retired = await seedModelVersion(dataSource, 'archived', { seed: 2 });
    const p = process([canary]);
    const since = new Date(Date.now() - 60_000);
    const before = (await stats.since(retired, 'canary', since))?.requests ?? 0;
    p.serve(retired, 3);
    p.serve(retired, 3);
    await p.publisher.publish();
    expect(await stats.since(retired, 'canary', since)).toMatchObject({ requests: before + 2 });
    const text = await p.metrics.registry.metrics();
    expect(text).not.toContain(`version="${retired}"`);
    p.serve(retired, 3); // a request that leased it before the swap
    await p.publisher.publish();
    expect(await stats.since(retired, 'canary', since)).toMatchObject({ requests: before + 3 });
  });

  it('writes all of a publish or none of it: a retry after a failed row counts nothing twice', async () => {
    const minute = new Date('2100-01-01T00:00:00Z'); // after every other row: since() reads this one alone
    const row = { versionId: canary, role: 'canary' as const, minute, requests: 5, errors: 0, latency: [5, 0] };
    // The production row cannot be stored (NaN is no bigint): the canary's, written first, must not stay.
    await expect(stats.add([row, { ...row, role: 'production', requests: Number.NaN }])).rejects.toThrow();
    expect(await stats.since(canary, 'canary', minute)).toBeUndefined();
    await stats.add([row, { ...row, role: 'production' }]);
    expect(await stats.since(canary, 'canary', minute)).toMatchObject({ requests: 5 });
  });
});
