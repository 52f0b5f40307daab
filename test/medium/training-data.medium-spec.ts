import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { EventRepository, FeaturesRepositoryModule } from '@app/db';
import { parseModelSpec } from '@app/mmoe';

import { CsvFileRepository } from '../../apps/worker/src/training/csv-file.repository';
import { TrainingDataService } from '../../apps/worker/src/training/training-data.service';
import { createMediumModule, runToken } from './medium.module';

describe('TrainingDataService (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  const token = runToken('training-data');
  // A window of its own, far from any other spec's events.
  const at = (minute: number) => new Date(Date.UTC(1999, 0, 1, 0, minute));

  beforeAll(async () => {
    moduleRef = await createMediumModule({
      imports: [FeaturesRepositoryModule],
      providers: [TrainingDataService, CsvFileRepository],
    });
  });

  afterAll(async () => {
    await moduleRef.get(DataSource).query(`DELETE FROM events WHERE event_id LIKE $1`, [`${token}-%`]);
    await moduleRef.close();
  });

  it("gives event-sourced rows the events' weights as the sample weight (none: 1), for production's spec too", async () => {
    const weights = [2, null, 0, 0.5, 4, null];
    await moduleRef.get(EventRepository).insertNew(
      weights.map((weight, i) => ({
        eventId: `${token}-${i}`,
        userId: `u${i}`,
        itemId: `i${i}`,
        labels: { click: i % 2 },
        requestId: null,
        modelVersionId: null,
        context: null,
        weight,
        occurredAt: at(i),
      })),
    );
    const spec = (sampleWeight?: string) =>
      parseModelSpec({
        features: [{ name: 'user_id', type: 'categorical' }],
        tasks: [{ name: 'click', label: 'click', type: 'binary' }],
        model: { expertUnits: [4] },
        training: { sampleWeight },
      });
    const data = await moduleRef
      .get(TrainingDataService)
      .load(
        { kind: 'events', from: at(0).toISOString(), to: at(6).toISOString() },
        spec('w'),
        spec('importance'),
        0.5,
        undefined,
      );
    expect(Array.from(data.train.weightColumn()!)).toEqual([2, 1, 0]);
    expect(Array.from(data.holdout.weightColumn()!)).toEqual([0.5, 4, 1]);
    expect(Array.from(data.productionHoldout!.weightColumn()!)).toEqual([0.5, 4, 1]);
  });
});
