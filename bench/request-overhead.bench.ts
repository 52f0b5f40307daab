/**
 * What the cross-cutting parts of every request cost on the event loop, each timed alone over many calls with the
 * API's own code and settings: the global rate limiter (@nestjs/throttler's guard and its in-memory storage), the
 * Prometheus observations of one score request, and the JSON logger's request line (dropped below LOG_LEVEL, and
 * written). The peer in the same run is the request itself: bench:serve's 10-candidate closed loop.
 *
 *   npm run bench:overhead [-- --calls 200000]
 */
import { Writable } from 'node:stream';
import type { ExecutionContext } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';

import { loadConfig } from '@app/config';

import { JsonLogger } from '../apps/api/src/platform/json-logger';
import { MetricsService } from '../apps/api/src/platform/metrics.service';
import { WindowCounterStorage } from '../apps/api/src/platform/rate-limit.storage';
import { ScoringController } from '../apps/api/src/scoring/scoring.controller';
import { ScoringMetrics } from '../apps/api/src/scoring/scoring.metrics';
import { cpuModel, markdownTable, positiveIntFlag } from './bench.util';

async function main(): Promise<void> {
  const calls = positiveIntFlag('calls', 200_000);
  const rows: string[][] = [];
  const time = async (what: string, call: () => unknown | Promise<unknown>) => {
    for (let i = 0; i < calls / 10; i++) await call();
    const started = performance.now();
    for (let i = 0; i < calls; i++) await call();
    rows.push([what, (((performance.now() - started) * 1000) / calls).toFixed(2)]);
  };

  // The guard as the API installs it (APP_GUARD), with a limit no call reaches: on the API's storage, and on the one
  // @nestjs/throttler ships (one client: its list of hits grows by one per call, up to the window's).
  const request = { ip: '127.0.0.1', headers: {} };
  const reply = { header: () => reply };
  const context = {
    getClass: () => ScoringController,
    getHandler: () => ScoringController.prototype.score,
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
  } as unknown as ExecutionContext;
  const modules: TestingModule[] = [];
  for (const [name, storage] of [
    ['WindowCounterStorage, the API’s', new WindowCounterStorage()],
    ['ThrottlerStorageService, @nestjs/throttler’s', undefined],
  ] as const) {
    const moduleRef = await Test.createTestingModule({
      imports: [ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 1e12 }], storage })],
      providers: [ThrottlerGuard],
    }).compile();
    modules.push(moduleRef);
    const guard = moduleRef.get(ThrottlerGuard);
    await guard.onModuleInit();
    await time(`rate limiter: ThrottlerGuard on ${name}`, () => guard.canActivate(context));
  }

  const metrics = new MetricsService();
  const scoring = new ScoringMetrics(metrics, { current: () => ({}) } as never);
  await time('metrics of one score request (HTTP, validation, 6 stages, total, counters)', () => {
    metrics.observeHttp('POST', '/v1/score', 200, 0.004);
    metrics.observeValidation('ScoreRequestDto', 0.00002);
    const timer = scoring.timer();
    for (const stage of ['features', 'assembly', 'inference', 'ranking'] as const) timer.stage(stage);
    scoring.observe({ role: 'production', versionId: 1 }, 10, timer, { hits: 1, misses: 0, unavailable: 0 });
    scoring.observeStage('validation', 0.02);
    scoring.observeStage('serialisation', 0.01);
  });

  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const line = { requestId: 'r-1', req: { method: 'POST', url: '/v1/score', remoteAddress: '127.0.0.1' } };
  for (const level of ['warn', 'log'] as const) {
    const logger = new JsonLogger(loadConfig({ ...process.env, LOG_LEVEL: level }), sink);
    await time(`request log line at LOG_LEVEL=${level} (${level === 'warn' ? 'dropped' : 'written'})`, () =>
      logger.fields('info', { ...line, res: { statusCode: 200 }, responseTime: 3 }, 'request completed'),
    );
  }
  await Promise.all(modules.map((m) => m.close()));

  console.log(`\nCPU: ${cpuModel()}; ${calls} calls each (after ${calls / 10} warm-up calls), on one thread`);
  console.log(markdownTable(['per request', 'µs'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
