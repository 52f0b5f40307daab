import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { initBackend, MultiTaskModel, RawTable, warmStartNetwork } from '@app/mmoe';
import { ModelRegistryService, RegistryModule } from '@app/registry';

import { TINY_SPEC, tinyInteractions } from '../fixtures/model.fixture';
import { createMediumModule } from './medium.module';

type Row = ReturnType<typeof tinyInteractions>[number];

/**
 * A warm start from a version as the worker makes it: the parent registered in Postgres, its artifact read back and
 * loaded, its vocabularies grown by ids first seen in the new rows. Every learnt row must survive the round trip and
 * the growth bit for bit, before any training.
 */
describe('vocabulary growth from a stored version (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  let registry: ModelRegistryService;
  let versionId: number | undefined;
  const table = (rows: Row[]) => rows.reduce((t, row) => (t.add(row), t), new RawTable(TINY_SPEC));

  beforeAll(async () => {
    await initBackend('wasm');
    moduleRef = await createMediumModule({ imports: [RegistryModule] });
    registry = moduleRef.get(ModelRegistryService);
  });

  afterAll(async () => {
    if (versionId !== undefined) {
      const db = moduleRef.get(DataSource);
      await db.query('DELETE FROM rollout_events WHERE to_version_id = $1 OR from_version_id = $1', [versionId]);
      await db.query('DELETE FROM model_versions WHERE id = $1', [versionId]);
    }
    await moduleRef?.close();
  });

  it("keeps every row the stored parent learnt bit-identical, the new ids' rows after them", async () => {
    const { model: trained } = await MultiTaskModel.train(TINY_SPEC, table(tinyInteractions(400, 1)));
    const learnt = trained.network.snapshot();
    versionId = (await registry.register({ artifact: trained.toArtifact(), note: 'growth' }, 'medium')).id;
    trained.dispose();

    const parent = MultiTaskModel.fromArtifact((await registry.findArtifact(versionId))!.artifact);
    // Three genres the parent never saw, in every new row.
    const newer = tinyInteractions(200, 2).map((row, i) => ({ ...row, item_genre: `new${i % 3}` }));
    const { network, growth } = warmStartNetwork(parent.network, parent.spec, table(newer));
    try {
      expect(growth).toContainEqual({ feature: 'item_genre', before: 6, added: 3, overflow: 0 });
      const genres = (net: typeof network) =>
        (net.preprocessing.categorical.find((c) => c.name === 'item_genre') as { vocab: string[] }).vocab;
      expect(genres(network).slice(0, 6)).toEqual(genres(parent.network));
      expect(genres(network).slice(6).sort()).toEqual(['new0', 'new1', 'new2']);
      const grown = network.snapshot();
      for (const [name, values] of learnt) {
        const prefix = grown.get(name)!.subarray(0, values.length);
        expect(Buffer.from(prefix.buffer, prefix.byteOffset, values.byteLength)).toEqual(
          Buffer.from(values.buffer, values.byteOffset, values.byteLength),
        );
      }
      expect(grown.get('embedding/item_genre')!.length).toBe(learnt.get('embedding/item_genre')!.length + 3 * 3);
    } finally {
      network.dispose();
      parent.dispose();
    }
  });
});
