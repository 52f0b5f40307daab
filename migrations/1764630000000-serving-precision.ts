import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The precision a version's serving graph is built in (fp32, or int8 once its holdout check allowed it), and the
 * `precision` rollout action that records a change of it.
 */
export class ServingPrecision1764630000000 implements MigrationInterface {
  name = 'ServingPrecision1764630000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE model_versions ADD COLUMN serving_precision text NOT NULL DEFAULT 'fp32'
        CHECK (serving_precision IN ('fp32', 'int8'))`,
    );
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM rollout_events WHERE action = 'precision'`);
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy'))`);
    await q.query(`ALTER TABLE model_versions DROP COLUMN serving_precision`);
  }
}
