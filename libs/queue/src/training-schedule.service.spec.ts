import type { Queue } from 'bull';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { loadConfig } from '@app/config';
import type { RetrainSchedule, TrainingScheduleRepository } from '@app/db';

import type { RepeatableJob, RepeatableJobHandle, RepeatableJobRunner, Schedule } from './repeatable-job.runner';
import type { ScheduledRetrainPayload } from './training-queue.contract';
import { TrainingScheduleService } from './training-schedule.service';

/** The stored schedule, in memory. */
class FakeScheduleRepository implements Pick<TrainingScheduleRepository, keyof TrainingScheduleRepository> {
  stored: RetrainSchedule | null = null;

  async read() {
    return this.stored;
  }
  async seed(schedule: RetrainSchedule) {
    this.stored ??= schedule;
    return this.stored;
  }
  async write(schedule: RetrainSchedule) {
    this.stored = schedule;
  }
}

/** The runner, in memory: what the job's schedule was when last synced is what Bull would run. */
class FakeRunner implements Pick<RepeatableJobRunner, 'register'> {
  registered: Schedule<ScheduledRetrainPayload> | null = null;
  syncs = 0;

  register<Data>(job: RepeatableJob<Data>): RepeatableJobHandle {
    const next = () => (this.registered ? Date.UTC(2030, 0, 1, 3) : null);
    return {
      next: async () => next(),
      sync: async (change) => {
        await change?.();
        this.registered = (await (job.schedule as () => Promise<Schedule<ScheduledRetrainPayload> | null>)()) ?? null;
        this.syncs++;
        return next();
      },
    };
  }
}

describe('TrainingScheduleService', () => {
  let repository: FakeScheduleRepository;
  let runner: FakeRunner;
  const service = (env: Record<string, string> = {}) =>
    new TrainingScheduleService(
      repository as unknown as TrainingScheduleRepository,
      runner as unknown as RepeatableJobRunner,
      { name: 'training' } as Queue,
      loadConfig({ NODE_ENV: 'test', ...env }),
    );

  beforeEach(() => {
    repository = new FakeScheduleRepository();
    runner = new FakeRunner();
  });

  it('seeds the schedule from the configuration on first boot and registers its job', async () => {
    const state = await service({ RETRAIN_CRON: '0 4 * * *', RETRAIN_WINDOW_DAYS: '3' }).ensure();
    expect(state).toEqual({
      cron: '0 4 * * *',
      windowDays: 3,
      paused: false,
      timezone: 'UTC',
      nextRunAt: '2030-01-01T03:00:00.000Z',
      updatedAt: expect.any(String),
      updatedBy: 'config',
    });
    expect(runner.registered).toEqual({ cron: '0 4 * * *', data: { windowDays: 3 } });
  });

  it('keeps a stored schedule: a process booting with other settings runs the stored one', async () => {
    await service().ensure();
    await service({ RETRAIN_CRON: '*/5 * * * *' }).ensure();
    expect(repository.stored?.cron).toBe('0 3 * * *');
    expect(runner.registered).toEqual({ cron: '0 3 * * *', data: { windowDays: 7 } });
  });

  it('seeds a paused schedule without a job when RETRAIN_ENABLED=false', async () => {
    await expect(service({ RETRAIN_ENABLED: 'false' }).ensure()).resolves.toMatchObject({
      paused: true,
      nextRunAt: null,
    });
    expect(runner.registered).toBeNull();
  });

  it('set() re-registers the job with the new cron and window, and records who', async () => {
    const schedule = service();
    await schedule.ensure();
    await expect(schedule.set('0 3 * * *', 14, 'admin')).resolves.toMatchObject({
      cron: '0 3 * * *',
      windowDays: 14,
      updatedBy: 'admin',
    });
    expect(runner.registered).toEqual({ cron: '0 3 * * *', data: { windowDays: 14 } });
    await schedule.set('*/10 * * * *', undefined, 'admin');
    expect(runner.registered).toEqual({ cron: '*/10 * * * *', data: { windowDays: 14 } });
  });

  it.each(['nope', '61 * * * *', '', '* * * * * * *'])(
    'set() rejects the cron %j as an invalid field named cron',
    async (cron) => {
      const error = await service()
        .set(cron, undefined, 'admin')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidFieldsError);
      expect(error).toMatchObject({
        errors: [{ field: 'cron', message: expect.stringMatching(/^cron must be a cron expression/) }],
      });
      expect(repository.stored).toBeNull();
      expect(runner.syncs).toBe(0);
    },
  );

  it('pause() removes the job and resume() brings it back; repeating either is a conflict', async () => {
    const schedule = service();
    await schedule.ensure();
    await expect(schedule.pause('admin')).resolves.toMatchObject({ paused: true, nextRunAt: null });
    expect(runner.registered).toBeNull();
    await expect(schedule.pause('admin')).rejects.toBeInstanceOf(ConflictError);
    await expect(schedule.resume('admin')).resolves.toMatchObject({ paused: false, cron: '0 3 * * *' });
    expect(runner.registered).not.toBeNull();
    await expect(schedule.resume('admin')).rejects.toBeInstanceOf(ConflictError);
  });

  it('get() seeds and registers when nothing is stored yet', async () => {
    await expect(service().get()).resolves.toMatchObject({ cron: '0 3 * * *', updatedBy: 'config' });
    expect(runner.registered).not.toBeNull();
  });
});
