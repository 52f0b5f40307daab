import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { TrainingControlModule, TrainingScheduleService } from '@app/queue';

import { createMediumModule } from './medium.module';

/** The retraining schedule on the real Postgres, Redis and Bull: the stored schedule and the one repeatable job stay in step. */
describe('TrainingScheduleService (medium: real Postgres, Redis and Bull)', () => {
  let moduleRef: TestingModule;
  let schedule: TrainingScheduleService;

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [TrainingControlModule] });
    schedule = moduleRef.get(TrainingScheduleService);
  });

  afterAll(async () => {
    // The schedule is one per cluster: leave it paused, with no repeatable job behind.
    await schedule.pause('medium').catch((e: unknown) => {
      if (!(e instanceof ConflictError)) throw e;
    });
    await moduleRef.close();
  });

  it('sets the cron and window, replacing the repeatable job, and tells the next run', async () => {
    await schedule.resume('medium').catch((e: unknown) => {
      if (!(e instanceof ConflictError)) throw e;
    });
    const state = await schedule.set('full', { cron: '*/30 * * * *', windowDays: 3 }, 'medium');
    expect(state).toMatchObject({ cron: '*/30 * * * *', windowDays: 3, paused: false, updatedBy: 'medium' });
    expect(Date.parse(state.nextRunAt!)).toBeGreaterThan(Date.now());
    expect(await schedule.get()).toMatchObject({ cron: '*/30 * * * *', nextRunAt: state.nextRunAt });
    await expect(schedule.set('full', { cron: '61 * * * *' }, 'medium')).rejects.toBeInstanceOf(InvalidFieldsError);
    // Every 30 s: below the default minimum of 60 s between runs; the stored schedule stays as it was.
    await expect(schedule.set('full', { cron: '*/30 * * * * *' }, 'medium')).rejects.toMatchObject({
      errors: [{ field: 'cron', message: expect.stringMatching(/^cron runs 30 s apart .*minimum of 60 s/) }],
    });
    expect(await schedule.get()).toMatchObject({ cron: '*/30 * * * *' });
  });

  it('pauses (no next run) and resumes, each only once', async () => {
    expect(await schedule.pause('medium')).toMatchObject({ paused: true, nextRunAt: null });
    await expect(schedule.pause('medium')).rejects.toBeInstanceOf(ConflictError);
    expect((await schedule.resume('medium')).nextRunAt).not.toBeNull();
    await expect(schedule.resume('medium')).rejects.toThrow('the training schedule is not paused');
  });

  it("reads a policy stored before the policy's newer fields with their defaults", async () => {
    const policy = { confidence: 0.9, minEvents: 500, tolerance: 0.02 };
    await schedule.get();
    await moduleRef.get(DataSource).query('UPDATE incremental_schedule SET rollout_policy = $1', [policy]);
    try {
      expect((await schedule.get()).incremental.rolloutPolicy).toEqual({ ...policy, minUsers: 100, maxHours: 168 });
    } finally {
      await moduleRef.get(DataSource).query('UPDATE incremental_schedule SET rollout_policy = NULL');
    }
  });

  it('converges on one repeatable job however many times it is ensured at once', async () => {
    const states = await Promise.all([schedule.ensure(), schedule.ensure(), schedule.ensure()]);
    expect(new Set(states.map((s) => s.nextRunAt)).size).toBe(1);
  });
});
