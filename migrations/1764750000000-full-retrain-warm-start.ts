import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The full retrain may warm-start from production (`warm_start`) and train a set number of epochs (`epochs`; NULL: the
 * spec's own). A schedule stored before keeps what it did: a fresh model, the spec's epochs.
 */
export class FullRetrainWarmStart1764750000000 implements MigrationInterface {
  name = 'FullRetrainWarmStart1764750000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE training_schedule ADD COLUMN warm_start boolean NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE training_schedule ADD COLUMN epochs integer CHECK (epochs >= 1)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE training_schedule DROP COLUMN epochs`);
    await q.query(`ALTER TABLE training_schedule DROP COLUMN warm_start`);
  }
}
