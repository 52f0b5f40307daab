import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A labelled prediction is keyed by its user too: a request id can be the caller's own `x-request-id`, and a client
 * reusing one across users had an event of one user joined to another user's prediction of the same item.
 */
export class LiveLabelledUser1764770000000 implements MigrationInterface {
  name = 'LiveLabelledUser1764770000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE live_labelled DROP CONSTRAINT live_labelled_pkey`);
    await q.query(`ALTER TABLE live_labelled ADD PRIMARY KEY (request_id, user_id, item_id, version_id)`);
  }

  /**
   * Keeps one user's row per (request, item, version), the newest, as the old key allowed no more. The aggregates
   * keep what the deleted rows added (the old join never retracts them): rebuild them if that matters.
   */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DELETE FROM live_labelled l USING live_labelled n
      WHERE (l.request_id, l.item_id, l.version_id) = (n.request_id, n.item_id, n.version_id)
        AND (l.logged_at, l.user_id) < (n.logged_at, n.user_id)`);
    await q.query(`ALTER TABLE live_labelled DROP CONSTRAINT live_labelled_pkey`);
    await q.query(`ALTER TABLE live_labelled ADD PRIMARY KEY (request_id, item_id, version_id)`);
  }
}
