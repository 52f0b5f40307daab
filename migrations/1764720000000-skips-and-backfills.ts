import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A scheduled training run that found nothing to train on (an incremental window without a new event) is recorded as
 * a `skip` rollout event, so that a quiet hour shows in the history as such rather than as a gap or a failure. And
 * `event_feed_backfills`: which event-fed lists (by name, source and length) have been filled from the events stored
 * before they were served, claimed by one process at a time.
 */
export class SkipsAndBackfills1764720000000 implements MigrationInterface {
  name = 'SkipsAndBackfills1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE event_feed_backfills (
        feed text PRIMARY KEY,
        claimed_at timestamptz,
        done_at timestamptz
      )`);
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision', 'inconclusive', 'skip'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE event_feed_backfills`);
    // A skip changed no version: the history loses nothing a version's state depends on.
    await q.query(`DELETE FROM rollout_events WHERE action = 'skip'`);
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision', 'inconclusive'))`);
  }
}
