import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A scheduled training run that found nothing to train on (an incremental window without a new event) is recorded as
 * a `skip` rollout event, so that a quiet hour shows in the history as such rather than as a gap or a failure.
 */
export class SkippedRuns1764720000000 implements MigrationInterface {
  name = 'SkippedRuns1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision', 'inconclusive', 'skip'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    // A skip changed no version: the history loses nothing a version's state depends on.
    await q.query(`DELETE FROM rollout_events WHERE action = 'skip'`);
    await q.query(`ALTER TABLE rollout_events DROP CONSTRAINT rollout_events_action_check`);
    await q.query(`
      ALTER TABLE rollout_events ADD CONSTRAINT rollout_events_action_check
        CHECK (action IN ('register', 'shadow', 'canary', 'promote', 'reject', 'rollback', 'archive', 'policy', 'precision', 'inconclusive'))`);
  }
}
