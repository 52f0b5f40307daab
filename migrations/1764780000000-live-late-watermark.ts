import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A second watermark of the live join, LIVE_LATE_JOIN_SECONDS behind: it joins every event again once, so that a
 * prediction that reached the log after its event was first joined (a COPY held up past LIVE_AGGREGATION_LAG_SECONDS,
 * a shadow scored late) is labelled all the same; the join is idempotent per (request, user, item). It starts where
 * the first watermark stands.
 */
export class LiveLateWatermark1764780000000 implements MigrationInterface {
  name = 'LiveLateWatermark1764780000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE live_watermark
        ADD COLUMN late_ingest_xid xid8 NOT NULL DEFAULT '0',
        ADD COLUMN late_event_id text NOT NULL DEFAULT ''`);
    await q.query(`UPDATE live_watermark SET late_ingest_xid = ingest_xid, late_event_id = event_id`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE live_watermark DROP COLUMN late_ingest_xid, DROP COLUMN late_event_id`);
  }
}
