import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Learning from live traffic: the served-prediction log (partitioned by day; partitions are created ahead and
 * dropped after the retention by the API's maintenance job), shadow versions, the automatic rollout policy stored
 * with a version, and the evidence of each automatic decision in the rollout history.
 */
export class LiveTraffic1764610000000 implements MigrationInterface {
  name = 'LiveTraffic1764610000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE prediction_log (
        logged_at timestamptz NOT NULL,
        request_id text NOT NULL,
        item_id text NOT NULL,
        user_id text NOT NULL,
        version_id int NOT NULL,
        role text NOT NULL CHECK (role IN ('production', 'canary', 'shadow')),
        scores jsonb NOT NULL
      ) PARTITION BY RANGE (logged_at)`);
    // The join key of the online metrics; one row per (request, item, version).
    await q.query(`CREATE INDEX prediction_log_request_item ON prediction_log (request_id, item_id)`);
    await q.query(`CREATE INDEX prediction_log_version_time ON prediction_log (version_id, logged_at)`);
    // The other side of that join: the events that came back for a served (request, item).
    await q.query(`CREATE INDEX events_request_item ON events (request_id, item_id) WHERE request_id IS NOT NULL`);

    await q.query(`ALTER TABLE model_versions DROP CONSTRAINT model_versions_status_check`);
    await q.query(`
      ALTER TABLE model_versions ADD CONSTRAINT model_versions_status_check
        CHECK (status IN ('candidate', 'shadow', 'canary', 'production', 'archived', 'failed'))`);
    await q.query(
      `ALTER TABLE model_versions ADD COLUMN shadow_percent smallint CHECK (shadow_percent BETWEEN 0 AND 100)`,
    );
    await q.query(`ALTER TABLE model_versions ADD COLUMN rollout_policy jsonb`);
    await q.query(`CREATE UNIQUE INDEX model_versions_one_shadow ON model_versions (status) WHERE status = 'shadow'`);

    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy'))`);
    await q.query(`ALTER TABLE rollout_events ADD COLUMN evidence jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE prediction_log`);
    await q.query(`DROP INDEX events_request_item`);
    await q.query(`ALTER TABLE rollout_events DROP COLUMN evidence`);
    await q.query(`DELETE FROM rollout_events WHERE action IN ('shadow', 'reject', 'policy')`);
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'canary', 'promote', 'rollback', 'archive'))`);
    await q.query(`DROP INDEX model_versions_one_shadow`);
    await q.query(`UPDATE model_versions SET status = 'candidate' WHERE status = 'shadow'`);
    await q.query(`ALTER TABLE model_versions DROP COLUMN rollout_policy, DROP COLUMN shadow_percent`);
    await q.query(`ALTER TABLE model_versions DROP CONSTRAINT model_versions_status_check`);
    await q.query(`
      ALTER TABLE model_versions ADD CONSTRAINT model_versions_status_check
        CHECK (status IN ('candidate', 'canary', 'production', 'archived', 'failed'))`);
  }
}
