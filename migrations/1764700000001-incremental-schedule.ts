import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The second retraining cadence, an incremental warm start from production (cron, replay share, epochs, paused, who
 * changed it last), one row beside training_schedule's; and each cadence's rollout policy, set on the canaries its
 * runs produce (NULL: none).
 */
export class IncrementalSchedule1764700000001 implements MigrationInterface {
  name = 'IncrementalSchedule1764700000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE training_schedule ADD COLUMN rollout_policy jsonb`);
    await q.query(`
      CREATE TABLE incremental_schedule (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        cron text NOT NULL,
        replay double precision NOT NULL CHECK (replay >= 0 AND replay <= 1),
        epochs integer NOT NULL CHECK (epochs >= 1),
        paused boolean NOT NULL,
        rollout_policy jsonb,
        updated_at timestamptz NOT NULL,
        updated_by text NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE incremental_schedule`);
    await q.query(`ALTER TABLE training_schedule DROP COLUMN rollout_policy`);
  }
}
