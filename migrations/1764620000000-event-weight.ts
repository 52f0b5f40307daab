import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An event's sample weight in event-sourced training; NULL (every event before this column) weighs 1. The check keeps
 * what the API already refuses out of the table too.
 */
export class EventWeight1764620000000 implements MigrationInterface {
  name = 'EventWeight1764620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE events ADD COLUMN weight double precision CHECK (weight >= 0 AND weight < 'Infinity'::double precision)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE events DROP COLUMN weight`);
  }
}
