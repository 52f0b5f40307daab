import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Live metrics from state kept up to date as events come back, instead of joining the whole prediction log with the
 * events on every read:
 * - `live_labelled`: the logged predictions an event came back for, with their merged labels (the join, made once);
 * - `live_aggregates`: per version, task and minute / hour / day, the additive aggregate of those predictions;
 * - `live_canary_*`: the same since the canary started, per user bucket, and its users: what the rollout policy reads;
 * - `live_watermark`: how far through the events the join has gone;
 * - `serving_stats`: requests, failures and the latency histogram per version, role and minute, from every process.
 * The prediction log keeps each task's score as a real[] in the version's task order (28 % smaller than jsonb and
 * written by COPY), loses the (version, time) index nothing reads any more, and events get the index the join walks.
 * A policy test that ends without a decision is recorded as an `inconclusive` rollout event. The state belongs to its
 * versions (foreign keys): it goes with them.
 */
export class LiveAggregates1764710000000 implements MigrationInterface {
  name = 'LiveAggregates1764710000000';

  async up(q: QueryRunner): Promise<void> {
    // Each version's task names in spec order, to turn a jsonb of scores into an array (and back, in down()).
    await q.query(`
      CREATE FUNCTION pg_temp.task_scores(version int, scores jsonb) RETURNS real[] LANGUAGE sql STABLE AS $$
        SELECT array_agg((scores ->> (t.task ->> 'name'))::real ORDER BY t.position)
        FROM model_versions v, jsonb_array_elements(v.spec -> 'tasks') WITH ORDINALITY AS t(task, position)
        WHERE v.id = version
      $$`);
    await q.query(
      `ALTER TABLE prediction_log ALTER COLUMN scores TYPE real[] USING pg_temp.task_scores(version_id, scores)`,
    );
    await q.query(`DROP INDEX prediction_log_version_time`);
    await q.query(`CREATE INDEX events_created_at ON events (created_at, event_id)`);

    await q.query(`
      CREATE TABLE live_labelled (
        request_id text NOT NULL,
        item_id text NOT NULL,
        version_id int NOT NULL REFERENCES model_versions ON DELETE CASCADE,
        user_id text NOT NULL,
        logged_at timestamptz NOT NULL,
        scores real[] NOT NULL,
        labels jsonb NOT NULL,
        PRIMARY KEY (request_id, item_id, version_id)
      )`);
    await q.query(`CREATE INDEX live_labelled_version_time ON live_labelled (version_id, logged_at)`);
    await q.query(`
      CREATE TABLE live_aggregates (
        version_id int NOT NULL REFERENCES model_versions ON DELETE CASCADE,
        task text NOT NULL,
        granularity text NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
        period_start timestamptz NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY (version_id, granularity, period_start, task)
      )`);
    await q.query(`
      CREATE TABLE live_canary_epochs (
        canary_event_id bigint PRIMARY KEY,
        canary_version_id int NOT NULL REFERENCES model_versions ON DELETE CASCADE,
        production_version_id int NOT NULL REFERENCES model_versions ON DELETE CASCADE,
        since timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE TABLE live_canary_aggregates (
        canary_event_id bigint NOT NULL REFERENCES live_canary_epochs ON DELETE CASCADE,
        version_id int NOT NULL,
        task text NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY (canary_event_id, version_id, task)
      )`);
    await q.query(`
      CREATE TABLE live_canary_users (
        canary_event_id bigint NOT NULL REFERENCES live_canary_epochs ON DELETE CASCADE,
        version_id int NOT NULL,
        user_id text NOT NULL,
        PRIMARY KEY (canary_event_id, version_id, user_id)
      )`);
    await q.query(`
      CREATE TABLE live_watermark (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        created_at timestamptz NOT NULL,
        event_id text NOT NULL
      )`);
    // The join starts with the events already stored: their predictions may still be in the log.
    await q.query(`INSERT INTO live_watermark (created_at, event_id) VALUES ('-infinity', '')`);
    await q.query(`
      CREATE TABLE serving_stats (
        version_id int NOT NULL REFERENCES model_versions ON DELETE CASCADE,
        role text NOT NULL CHECK (role IN ('production', 'canary')),
        minute timestamptz NOT NULL,
        requests bigint NOT NULL,
        errors bigint NOT NULL,
        latency bigint[] NOT NULL,
        PRIMARY KEY (version_id, role, minute)
      )`);

    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision', 'inconclusive'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    // An inconclusive end stays in the history as a policy event: its evidence (verdict included) is kept whole.
    await q.query(`UPDATE rollout_events SET action = 'policy' WHERE action = 'inconclusive'`);
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision'))`);
    await q.query(
      `DROP TABLE serving_stats, live_watermark, live_canary_users, live_canary_aggregates, live_canary_epochs, live_aggregates, live_labelled`,
    );
    await q.query(`DROP INDEX events_created_at`);
    await q.query(`CREATE INDEX prediction_log_version_time ON prediction_log (version_id, logged_at)`);
    await q.query(`
      CREATE FUNCTION pg_temp.task_scores_json(version int, scores real[]) RETURNS jsonb LANGUAGE sql STABLE AS $$
        SELECT jsonb_object_agg(t.task ->> 'name', scores[t.position])
        FROM model_versions v, jsonb_array_elements(v.spec -> 'tasks') WITH ORDINALITY AS t(task, position)
        WHERE v.id = version
      $$`);
    await q.query(
      `ALTER TABLE prediction_log ALTER COLUMN scores TYPE jsonb USING pg_temp.task_scores_json(version_id, scores)`,
    );
  }
}
