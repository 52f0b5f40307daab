import { MigrationInterface, QueryRunner } from 'typeorm';

/** A version's score-fusion rule; NULL means the weighted sum of its objective weights (as before this column). */
export class VersionFusion1764600000000 implements MigrationInterface {
  name = 'VersionFusion1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions ADD COLUMN fusion jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions DROP COLUMN fusion`);
  }
}
