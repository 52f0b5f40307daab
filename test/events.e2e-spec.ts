import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';

import { EventRepository } from '@app/db';

import { ProductionSpecSource } from '../apps/api/src/events/production-spec.source';
import { createApiApp } from './api-app.factory';
import { TINY_SPEC } from './fixtures/model.fixture';

// TINY_SPEC's tasks: click and like (binary), watch_time (regression).
describe('events (e2e)', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let productionSpec: jest.SpyInstance;

  const post = (events: unknown[]) => app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
  const storedCount = async (): Promise<number> =>
    (await db.query('SELECT count(*)::int AS count FROM events'))[0].count;
  const event = (i: number, labels: Record<string, number> = { click: 1, watch_time: 12.5 }) => ({
    eventId: `e${i}`,
    userId: `u${i % 3}`,
    itemId: `i${i}`,
    labels,
  });

  beforeAll(async () => {
    app = await createApiApp();
    db = app.get(DataSource);
    productionSpec = jest.spyOn(app.get(ProductionSpecSource), 'current');
  });

  beforeEach(async () => {
    productionSpec.mockReturnValue(TINY_SPEC);
    await db.query('TRUNCATE events, user_features, item_features, model_versions CASCADE');
  });

  afterAll(() => app.close());

  it('stores a batch once: a re-post stores nothing new', async () => {
    const batch = [
      event(1),
      { ...event(2, { like: 0 }), requestId: 'r-1', context: { device: 'mobile' }, occurredAt: '2025-01-02T03:04:05Z' },
    ];
    const first = await post(batch);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ received: 2, stored: 2, duplicates: 0 });
    expect((await post([...batch, event(3)])).json()).toEqual({ received: 3, stored: 1, duplicates: 2 });
    expect((await post([event(4), event(4)])).json()).toEqual({ received: 2, stored: 1, duplicates: 1 });
    expect(await storedCount()).toBe(4);
    const [row] = await db.query(`SELECT request_id, context, labels, occurred_at FROM events WHERE event_id = 'e2'`);
    expect(row).toEqual({
      request_id: 'r-1',
      context: { device: 'mobile' },
      labels: { like: 0 },
      occurred_at: new Date('2025-01-02T03:04:05Z'),
    });
  });

  it('rejects the whole batch when one label does not fit the production tasks', async () => {
    const unknownTask = await post([event(0), event(1), event(2), { ...event(3), labels: { click: 1, share: 1 } }]);
    expect(unknownTask.statusCode).toBe(400);
    expect(unknownTask.json().errors).toEqual([
      {
        field: 'events.3.labels.share',
        message: 'events.3.labels.share is not a task of the production model (click, like, watch_time)',
      },
    ]);
    const notBinary = await post([event(0, { click: 0.5 })]);
    expect(notBinary.json().message).toEqual(['events.0.labels.click must be 0 or 1 (binary task), got 0.5']);
    expect((await post([event(0, {})])).json().message).toEqual([
      'events.0.labels must name at least one task (click, like, watch_time)',
    ]);
    expect((await post([event(0, { watch_time: 'long' } as never)])).json().errors).toEqual([
      {
        field: 'events.0.labels.watch_time',
        message: 'events.0.labels.watch_time must be a number between -1e18 and 1e18',
      },
    ]);
    // A regression label beyond ±1e18 overflowed the live metrics' sums of squares (and a float32 loss).
    expect((await post([event(0, { watch_time: 1e308 })])).json().message).toEqual([
      'events.0.labels.watch_time must be a number between -1e18 and 1e18',
    ]);
    expect(await storedCount()).toBe(0);
  });

  it('checks model versions, ids, dates and sizes, naming the field', async () => {
    const unknownVersion = await post([{ ...event(0), modelVersion: 999 }]);
    expect(unknownVersion.statusCode).toBe(400);
    expect(unknownVersion.json().message).toEqual(['events.0.modelVersion 999 is not a registered model version']);
    const [{ id }] = await db.query(
      `INSERT INTO model_versions (status, spec, preprocessing, artifact, artifact_sha256, objective_weights)
       VALUES ('candidate', '{}', '{}', '\\x00', 'x', '{}') RETURNING id`,
    );
    expect((await post([{ ...event(0), modelVersion: id }])).json()).toEqual({ received: 1, stored: 1, duplicates: 0 });

    const malformed = [
      [{ ...event(1), eventId: undefined }, 'events.0.eventId is required'],
      [{ ...event(1), occurredAt: 'yesterday' }, 'events.0.occurredAt must be a valid ISO 8601 date string'],
      // ISO 8601, but not a date-time Date can read: would otherwise be stored as NULL and fail the insert.
      [{ ...event(1), occurredAt: '2025-W01' }, 'events.0.occurredAt must be a date-time'],
      // A user's newest click for decades: every later event of theirs would rebuild their lists.
      [{ ...event(1), occurredAt: '2099-01-01T00:00:00Z' }, 'events.0.occurredAt must not be later than now'],
      [{ ...event(1), modelVersion: 2 ** 31 }, 'events.0.modelVersion must not be greater than 2147483647'],
      [{ ...event(1), context: { nested: { no: 1 } } }, 'events.0.context.nested must be a string, a number'],
      [{ ...event(1), extra: true }, 'events.0.extra is not a field'],
    ] as const;
    for (const [body, message] of malformed) expect((await post([body])).body).toContain(message);
    expect((await post([])).body).toContain('events must contain at least 1 elements');
    const tooMany = await post(Array.from({ length: 10_001 }, (_, i) => event(i)));
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().message).toEqual(['events must contain no more than 10000 elements']);
    expect(await storedCount()).toBe(1);
  });

  it('stores 10,000 events in one call', async () => {
    const response = await post(Array.from({ length: 10_000 }, (_, i) => event(i)));
    expect(response.json()).toEqual({ received: 10_000, stored: 10_000, duplicates: 0 });
  });

  it.each([
    [-1, 'events.1.weight must not be less than 0'],
    ['2', 'events.1.weight must be a number conforming to the specified constraints'],
    [1e7, 'events.1.weight must not be greater than 1000000'],
    [1e-300, 'events.1.weight must be 0 or at least 1e-30'],
  ])('refuses a weight of %j naming the field, and stores none of the batch', async (weight, message) => {
    const response = await post([event(0), { ...event(1), weight }]);
    expect(response.statusCode).toBe(400);
    const { errors } = response.json();
    expect(errors).toContainEqual({ field: 'events.1.weight', message });
    expect(errors.every((e: { field: string }) => e.field === 'events.1.weight')).toBe(true);
    expect(await storedCount()).toBe(0);
    expect((await post([{ ...event(2), weight: 0 }])).statusCode).toBe(200);
  });

  it('answers 409 while there is no production model', async () => {
    productionSpec.mockReturnValue(undefined);
    const response = await post([event(0)]);
    expect(response.statusCode).toBe(409);
    expect(response.json().message).toBe('no production model: events cannot be validated');
    expect(await storedCount()).toBe(0);
  });

  it('reads training rows of a time window joined with the current user and item features', async () => {
    await app.inject({ method: 'PUT', url: '/v1/users/u1/features', payload: { features: { user_age: 30 } } });
    await app.inject({ method: 'PUT', url: '/v1/items/i1/features', payload: { features: { item_genre: 'g1' } } });
    const at = (minute: number) => `2025-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
    await post([
      { ...event(1), occurredAt: at(1), weight: 2.5, context: { context_hour: 9 } }, // u1 × i1: both have features
      { ...event(2), occurredAt: at(2) }, // u2 × i2: neither has; no weight
      { ...event(3), occurredAt: at(3) },
      { ...event(4), occurredAt: at(9) }, // outside the window
    ]);
    const events = app.get(EventRepository);
    const rows = await events.readInSnapshot((reads) => reads.window(new Date(at(1)), new Date(at(9)), []));
    expect(rows.map((r) => r.eventId)).toEqual(['e1', 'e2', 'e3']);
    expect(rows[0]).toEqual({
      eventId: 'e1',
      userId: 'u1',
      itemId: 'i1',
      labels: { click: 1, watch_time: 12.5 },
      weight: 2.5,
      occurredAt: new Date(at(1)),
      context: { context_hour: 9 },
      userFeatures: { user_age: 30 },
      itemFeatures: { item_genre: 'g1' },
    });
    expect(rows[1]).toMatchObject({ context: null, userFeatures: null, itemFeatures: null, weight: null });
  });

  it('timestamps an event without occurredAt at its arrival', async () => {
    const before = Date.now();
    await post([event(0)]);
    const [{ occurred_at }] = await db.query(`SELECT occurred_at FROM events`);
    expect(occurred_at.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(occurred_at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
  });
});
