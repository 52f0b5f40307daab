import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `events.ingest_xid`: the transaction that stored the event. A training job records the snapshot it read the events
 * in (`metrics.dataset.snapshot`); an event that snapshot does not see was stored after the read, whatever its
 * occurred_at, so an incremental child trains on it (a late event) and on no event its parent read. A transaction id
 * rather than a sequence or a timestamp: both are taken before the commit, so a reader cannot tell from them which
 * rows a concurrent transaction will still add below its high-water mark; a snapshot says exactly. Added without a
 * value for the rows stored before (no table rewrite): NULL is "read by every version recorded since".
 */
export class EventIngestXid1764740000000 implements MigrationInterface {
  name = 'EventIngestXid1764740000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE events ADD COLUMN ingest_xid xid8`);
    await q.query(`ALTER TABLE events ALTER COLUMN ingest_xid SET DEFAULT pg_current_xact_id()`);
    await q.query(`CREATE INDEX events_ingest_xid ON events (ingest_xid)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE events DROP COLUMN ingest_xid`);
  }
}
