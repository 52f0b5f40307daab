import { continuationOf } from './lineage.rules';
import type { DatasetRecord } from './version-metrics';

const dataset = (extra: Partial<DatasetRecord>): DatasetRecord => ({
  source: { kind: 'incremental', to: '2025-02-07T00:00:00.000Z' },
  holdoutFraction: 0.2,
  holdoutStart: '2025-02-06T12:00:00.000Z',
  skippedRows: 0,
  ...extra,
});

describe('continuationOf', () => {
  it("continues where the version's training rows ended, so that its held-out events are trained on next", () => {
    const recorded = dataset({
      window: { from: '2025-02-05T00:00:00.000Z', to: '2025-02-07T00:00:00.000Z' },
      trainedTo: '2025-02-06T12:00:00.000Z',
      historyFrom: '2025-02-01T00:00:00.000Z',
    });
    expect(continuationOf(recorded)).toEqual({
      from: '2025-02-06T12:00:00.000Z',
      historyFrom: '2025-02-01T00:00:00.000Z',
    });
  });

  it('hands on the snapshot its events were read in: what was stored after is late for it', () => {
    expect(continuationOf(dataset({ window: { from: 'a', to: 'b' }, snapshot: '10:14:10,12' }))).toEqual({
      from: 'b',
      historyFrom: 'a',
      seen: '10:14:10,12',
    });
  });

  it("falls back to the window's end and start for a version recorded before either", () => {
    expect(continuationOf(dataset({ window: { from: 'a', to: 'b' } }))).toEqual({ from: 'b', historyFrom: 'a' });
    expect(continuationOf(dataset({ source: { kind: 'events', from: 'a', to: 'b' } }))).toEqual({
      from: 'b',
      historyFrom: 'a',
    });
  });

  it('has nothing to continue for a version trained on a file, or uploaded', () => {
    expect(continuationOf(dataset({ source: { kind: 'csv', path: '/x.csv' } }))).toBeUndefined();
    expect(continuationOf(undefined)).toBeUndefined();
  });
});
