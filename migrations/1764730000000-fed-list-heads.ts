import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `user_features.fed_heads`: for each event-fed list built from events, the feed it was built for and its newest
 * positive event (occurred_at, event_id). An event newer than that head is appended to the list, which reads the few
 * events after the head instead of rebuilding the list from the user's past events; a write by PUT clears the heads
 * (the next event rebuilds).
 */
export class FedListHeads1764730000000 implements MigrationInterface {
  name = 'FedListHeads1764730000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE user_features ADD COLUMN fed_heads jsonb NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE user_features DROP COLUMN fed_heads`);
  }
}
