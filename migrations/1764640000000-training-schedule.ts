import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The retraining schedule (cron, window, paused, who changed it last), one row. It lived in Redis, and went with
 * Redis's data: a paused schedule came back running from the configuration's seed. Bull's repeatable job that carries
 * it out stays in Redis, and is registered again from this row when Redis loses it.
 */
export class TrainingSchedule1764640000000 implements MigrationInterface {
  name = 'TrainingSchedule1764640000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE training_schedule (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        cron text NOT NULL,
        window_days double precision NOT NULL CHECK (window_days > 0),
        paused boolean NOT NULL,
        updated_at timestamptz NOT NULL,
        updated_by text NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE training_schedule`);
  }
}
