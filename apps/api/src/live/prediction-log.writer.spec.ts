import type { AppConfig } from '@app/config';
import type { LoggedPrediction, PredictionLogRepository } from '@app/db';

import { MetricsService } from '../platform/metrics.service';
import { PredictionLogWriter, type ServedPredictions } from './prediction-log.writer';

function served(requestId: string, items: number): ServedPredictions {
  return {
    loggedAt: new Date(0),
    requestId,
    userId: 'u',
    versionId: 1,
    role: 'canary',
    itemIds: Array.from({ length: items }, (_, i) => `i${i}`),
    scores: [0, 1].map((t) => Float32Array.from({ length: items }, (_, i) => (t === 0 ? i / 8 : i / 4))),
  };
}

/** A repository whose COPYs are recorded (their lines read back into rows), and held until released, or fail. */
class FakeLog {
  batches: LoggedPrediction[][] = [];
  fail = false;
  async insertEncoded(rows: Uint8Array): Promise<void> {
    if (this.fail) throw new Error('connection refused');
    const lines = Buffer.from(rows).toString().split('\n').slice(0, -1);
    this.batches.push(
      lines.map((line) => {
        const [loggedAt, requestId, itemId, userId, versionId, role, scores] = line.split('\t');
        return {
          loggedAt: new Date(loggedAt),
          requestId,
          itemId,
          userId,
          versionId: Number(versionId),
          role: role as LoggedPrediction['role'],
          scores: scores.slice(1, -1).split(',').map(Number),
        };
      }),
    );
  }
}

async function counters(metrics: MetricsService): Promise<Record<string, number>> {
  const metric = await metrics.registry.getSingleMetric('prediction_log_rows_total')!.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.outcome), v.value]));
}

describe('PredictionLogWriter', () => {
  const config = {
    PREDICTION_LOG_BUFFER_ROWS: 10,
    PREDICTION_LOG_BATCH_ROWS: 4,
    PREDICTION_LOG_FLUSH_MS: 60_000,
  } as AppConfig;
  let log: FakeLog;
  let metrics: MetricsService;
  let writer: PredictionLogWriter;

  beforeEach(() => {
    log = new FakeLog();
    metrics = new MetricsService();
    writer = new PredictionLogWriter(config, log as unknown as PredictionLogRepository, metrics);
  });

  it('writes whole responses in batches of about PREDICTION_LOG_BATCH_ROWS rows, one row per item', async () => {
    expect(writer.enqueue(served('r1', 3))).toBe(true);
    expect(writer.enqueue(served('r2', 3))).toBe(true);
    await writer.flush();
    expect(log.batches.map((b) => b.map((r) => `${r.requestId}/${r.itemId}`))).toEqual([
      ['r1/i0', 'r1/i1', 'r1/i2', 'r2/i0', 'r2/i1', 'r2/i2'],
    ]);
    expect(log.batches[0][1]).toEqual({
      loggedAt: new Date(0),
      requestId: 'r1',
      itemId: 'i1',
      userId: 'u',
      versionId: 1,
      role: 'canary',
      scores: [0.125, 0.25],
    });
    expect(await counters(metrics)).toEqual({ written: 6, dropped: 0, failed: 0 });
  });

  it('drops, and counts, a response that does not fit in the buffer instead of waiting', async () => {
    log.insertEncoded = () => new Promise(() => undefined); // Postgres hangs: the batch in flight never returns
    expect(writer.enqueue(served('r1', 4))).toBe(true); // a full batch: taken out and written (forever)
    expect(writer.enqueue(served('r2', 6))).toBe(true); // waits in the buffer
    expect(writer.enqueue(served('r3', 4))).toBe(true); // 10 rows buffered: full
    expect(writer.enqueue(served('r4', 1))).toBe(false);
    expect(await counters(metrics)).toMatchObject({ written: 0, dropped: 1 });
  });

  it('lets the event loop run between the responses of a batch it encodes', async () => {
    const order: string[] = [];
    const insert = log.insertEncoded.bind(log);
    log.insertEncoded = async (rows) => {
      order.push('insert');
      await insert(rows);
    };
    for (const id of ['r1', 'r2']) writer.enqueue(served(id, 1));
    // Work the event loop has waiting when the flush starts (a request's next step) runs before its INSERT.
    setImmediate(() => order.push('a request'));
    await writer.flush();
    expect(order).toEqual(['a request', 'insert']);
    expect(log.batches).toHaveLength(1);
  });

  it('counts the rows of a failed INSERT and goes on', async () => {
    log.fail = true;
    writer.enqueue(served('r1', 2));
    await writer.flush();
    log.fail = false;
    writer.enqueue(served('r2', 1));
    await writer.flush();
    expect(await counters(metrics)).toEqual({ written: 1, dropped: 0, failed: 2 });
  });
});
