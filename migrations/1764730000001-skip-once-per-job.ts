import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A scheduled run's `skip` is recorded once per training job: a retried attempt finds the first attempt's record
 * (ModelRegistryService.recordSkippedRun), and this index makes a second record impossible. The repeats recorded
 * before it are removed, the first of each kept.
 */
export class SkipOncePerJob1764730000001 implements MigrationInterface {
  name = 'SkipOncePerJob1764730000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      DELETE FROM rollout_events r USING rollout_events first
      WHERE r.action = 'skip' AND first.action = 'skip' AND first.id < r.id
        AND first.evidence #>> '{skipped,job}' = r.evidence #>> '{skipped,job}'`);
    await q.query(
      `CREATE UNIQUE INDEX rollout_events_skip_job ON rollout_events ((evidence #>> '{skipped,job}')) WHERE action = 'skip'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX rollout_events_skip_job`);
  }
}
