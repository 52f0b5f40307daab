import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The live join's watermark by the transaction that stored each event (`events.ingest_xid`), not its `created_at`:
 * `created_at` is when that transaction began, and a batch that waited on locks could commit after the watermark had
 * passed it, its events then never joined. An event below the oldest transaction still running
 * (pg_snapshot_xmin) can no longer appear, so a watermark over (ingest_xid, event_id) never passes one that will.
 * The new watermark starts at the first event the old one had not reached; an event joined again merges into its
 * labelled prediction as before (the join is idempotent per event).
 */
export class LiveWatermarkXid1764760000000 implements MigrationInterface {
  name = 'LiveWatermarkXid1764760000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE live_watermark ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT '0'`);
    await q.query(`
      UPDATE live_watermark w SET ingest_xid = COALESCE(
        (SELECT min(e.ingest_xid) FROM events e WHERE (e.created_at, e.event_id) > (w.created_at, w.event_id)),
        pg_snapshot_xmin(pg_current_snapshot())), event_id = ''`);
    await q.query(`ALTER TABLE live_watermark DROP COLUMN created_at`);
    await q.query(`CREATE INDEX events_ingest_xid_event ON events (ingest_xid, event_id)`);
    await q.query(`DROP INDEX events_ingest_xid`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX events_ingest_xid ON events (ingest_xid)`);
    await q.query(`DROP INDEX events_ingest_xid_event`);
    await q.query(`ALTER TABLE live_watermark ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()`);
    await q.query(`
      UPDATE live_watermark w SET created_at = COALESCE(
        (SELECT max(e.created_at) FROM events e WHERE e.ingest_xid < w.ingest_xid), '-infinity')`);
    await q.query(`ALTER TABLE live_watermark ALTER COLUMN created_at DROP DEFAULT, DROP COLUMN ingest_xid`);
  }
}
