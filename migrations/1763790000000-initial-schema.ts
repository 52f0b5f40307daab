import { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1763790000000 implements MigrationInterface {
  name = 'InitialSchema1763790000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE model_versions (
        id serial PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('candidate', 'canary', 'production', 'archived', 'failed')),
        spec jsonb NOT NULL,
        preprocessing jsonb NOT NULL,
        metrics jsonb NOT NULL DEFAULT '{}',
        artifact bytea NOT NULL,
        artifact_sha256 text NOT NULL,
        onnx bytea,
        onnx_sha256 text,
        parent_version_id int REFERENCES model_versions (id),
        training_job_id text,
        canary_percent smallint CHECK (canary_percent BETWEEN 0 AND 100),
        objective_weights jsonb NOT NULL,
        note text,
        created_at timestamptz NOT NULL DEFAULT now(),
        promoted_at timestamptz
      )`);
    // At most one production and one canary version at any time, enforced by the database itself.
    await q.query(
      `CREATE UNIQUE INDEX model_versions_one_production ON model_versions (status) WHERE status = 'production'`,
    );
    await q.query(`CREATE UNIQUE INDEX model_versions_one_canary ON model_versions (status) WHERE status = 'canary'`);
    await q.query(
      `CREATE UNIQUE INDEX model_versions_training_job ON model_versions (training_job_id) WHERE training_job_id IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE rollout_events (
        id bigserial PRIMARY KEY,
        action text NOT NULL CHECK (action IN ('register', 'canary', 'promote', 'rollback', 'archive')),
        actor text NOT NULL,
        from_version_id int REFERENCES model_versions (id),
        to_version_id int REFERENCES model_versions (id),
        percent smallint,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    for (const table of ['user_features', 'item_features']) {
      await q.query(`
        CREATE TABLE ${table} (
          entity_id text PRIMARY KEY,
          features jsonb NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now()
        )`);
    }
    await q.query(`
      CREATE TABLE events (
        event_id text PRIMARY KEY,
        request_id text,
        user_id text NOT NULL,
        item_id text NOT NULL,
        model_version_id int REFERENCES model_versions (id),
        labels jsonb NOT NULL,
        context jsonb,
        occurred_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX events_occurred_at ON events (occurred_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE events, item_features, user_features, rollout_events, model_versions`);
  }
}
