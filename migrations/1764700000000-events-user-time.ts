import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A user's events in time order: training rebuilds each event-fed list as it was when an event occurred (the user's
 * last positive events before it), one short index range per training row instead of a scan of the table.
 */
export class EventsUserTime1764700000000 implements MigrationInterface {
  name = 'EventsUserTime1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX events_user_occurred_at ON events (user_id, occurred_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX events_user_occurred_at`);
  }
}
