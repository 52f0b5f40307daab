import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { MultiTaskModel, type ModelSpecInput } from '@app/mmoe';
import { REDIS } from '@app/redis';

import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import type { ScoreResponseDto } from '../apps/api/src/scoring/dto/score.dto';
import { createApiApp } from './api-app.factory';
import { seedModelVersion, TINY_SPEC, tinyArtifact, tinyUser } from './fixtures/model.fixture';

/** The tiny model with its price under log1p and its user's age in buckets. */
const FEATURES: ModelSpecInput['features'] = TINY_SPEC.features.map((f) =>
  f.name === 'item_price'
    ? { name: f.name, type: 'numeric', transform: 'log1p' }
    : f.name === 'user_age'
      ? { name: f.name, type: 'numeric', buckets: [25, 35, 45, 55], embeddingDim: 2 }
      : f,
);

describe('serving log1p and bucketised features (e2e: ONNX Runtime in the API against tfjs)', () => {
  let app: NestFastifyApplication;
  let dataSource: DataSource;

  beforeAll(async () => {
    app = await createApiApp();
    dataSource = app.get(DataSource);
    await dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features CASCADE');
    await app.get<Redis>(REDIS).flushdb();
    await seedModelVersion(dataSource, 'production', { training: { features: FEATURES } });
    await app.get(ModelLifecycleService).refresh();
  });

  afterAll(async () => {
    await dataSource.query('TRUNCATE model_versions, rollout_events, user_features, item_features CASCADE');
    await app.close();
  });

  it('scores as the trained model does, and a price log1p cannot take as a missing one', async () => {
    const items: Record<string, Record<string, unknown>> = {
      cheap: { item_genre: 'g1', item_price: 2 },
      dear: { item_genre: 'g1', item_price: 90 },
      negative: { item_genre: 'g1', item_price: -5 },
      unpriced: { item_genre: 'g1' },
    };
    const put = (url: string, features: object) => app.inject({ method: 'PUT', url, payload: { features } });
    await put('/v1/users/old/features', { ...tinyUser(1), user_age: 61 });
    await put('/v1/users/young/features', { ...tinyUser(1), user_age: 19 });
    for (const [id, features] of Object.entries(items)) await put(`/v1/items/${id}/features`, features);

    const model = MultiTaskModel.fromArtifact((await tinyArtifact(1, { features: FEATURES })).artifact);
    try {
      for (const user of ['old', 'young']) {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/score',
          payload: { userId: user, itemIds: Object.keys(items) },
        });
        expect(response.statusCode).toBe(200);
        const served = new Map(response.json<ScoreResponseDto>().items.map((i) => [i.itemId, i.scores]));
        const age = user === 'old' ? 61 : 19;
        const records = Object.values(items).map((item) => ({
          ...tinyUser(1),
          user_age: age,
          ...item,
          ...(item.item_price === -5 && { item_price: undefined }), // what serving makes of it
        }));
        const expected = model.predictRecords(records).scores;
        Object.keys(items).forEach((id, i) =>
          TINY_SPEC.tasks.forEach((task, t) =>
            expect(Math.abs(served.get(id)![task.name] - expected[t][i])).toBeLessThan(
              1e-5 * Math.max(1, Math.abs(expected[t][i])),
            ),
          ),
        );
        expect(served.get('negative')).toEqual(served.get('unpriced'));
        expect(served.get('cheap')).not.toEqual(served.get('dear'));
      }
    } finally {
      model.dispose();
    }
  });
});
