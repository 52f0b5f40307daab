import { Logger } from '@nestjs/common';
import type { Queue } from 'bull';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { loadConfig } from '@app/config';
import type { RetrainCadence, RetrainCadences, RetrainSchedule, TrainingScheduleRepository } from '@app/db';

import type { RepeatableJob, RepeatableJobHandle, RepeatableJobRunner, Schedule } from './repeatable-job.runner';
import { TrainingJobName } from './training-queue.contract';
import { TrainingScheduleService } from './training-schedule.service';

/** The stored cadences, in memory; `stored` is the full retrain's (what most tests look at). */
class FakeScheduleRepository implements Pick<TrainingScheduleRepository, keyof TrainingScheduleRepository> {
  cadences: Partial<RetrainCadences> = {};

  get stored(): RetrainSchedule | null {
    return this.cadences.full ?? null;
  }
  async read<C extends RetrainCadence>(cadence: C) {
    return (this.cadences[cadence] ?? null) as RetrainCadences[C] | null;
  }
  async seed<C extends RetrainCadence>(cadence: C, schedule: RetrainCadences[C]) {
    this.cadences[cadence] ??= schedule;
    return this.cadences[cadence] as RetrainCadences[C];
  }
  async write<C extends RetrainCadence>(cadence: C, schedule: RetrainCadences[C]) {
    this.cadences[cadence] = schedule;
  }
}

/**
 * The runner, in memory: what a job's schedule was when last synced is what Bull would run; `registered` is the full
 * retrain's, `jobs` holds every job's by name.
 */
class FakeRunner implements Pick<RepeatableJobRunner, 'register'> {
  jobs = new Map<string, Schedule<unknown> | null>();
  syncs = 0;

  get registered(): Schedule<unknown> | null {
    return this.jobs.get(TrainingJobName.ScheduledRetrain) ?? null;
  }

  register<Data>(job: RepeatableJob<Data>): RepeatableJobHandle {
    const next = () => (this.jobs.get(job.name) ? Date.UTC(2030, 0, 1, 3) : null);
    return {
      next: async () => next(),
      sync: async (change) => {
        await change?.();
        this.jobs.set(job.name, (await (job.schedule as () => Promise<Schedule<Data> | null>)()) ?? null);
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
      // No finished job: every cadence's lastRun is null (test/schedule.e2e-spec.ts reads real ones).
      { name: 'training', getJobs: async () => [] } as unknown as Queue,
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
      warmStart: false,
      epochs: null,
      paused: false,
      rolloutPolicy: null,
      timezone: 'UTC',
      nextRunAt: '2030-01-01T03:00:00.000Z',
      lastRun: null,
      updatedAt: expect.any(String),
      updatedBy: 'config',
      // The incremental cadence is seeded paused by default: no job.
      incremental: {
        cron: '0 * * * *',
        replay: 0.2,
        epochs: 1,
        paused: true,
        rolloutPolicy: null,
        timezone: 'UTC',
        nextRunAt: null,
        lastRun: null,
        updatedAt: expect.any(String),
        updatedBy: 'config',
      },
    });
    expect(runner.jobs.get(TrainingJobName.ScheduledIncremental)).toBeNull();
    expect(runner.registered).toEqual({ cron: '0 4 * * *', data: { windowDays: 3 } });
  });

  it('keeps a stored schedule: a process booting with other settings runs the stored one, and says so once', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await service().ensure();
      expect(warn).not.toHaveBeenCalled();
      const other = service({ RETRAIN_CRON: '*/5 * * * *', RETRAIN_INCREMENTAL_ENABLED: 'true' });
      await other.ensure();
      await other.get();
      expect(repository.stored?.cron).toBe('0 3 * * *');
      expect(runner.registered).toEqual({ cron: '0 3 * * *', data: { windowDays: 7 } });
      expect(warn.mock.calls.map(([message]) => message)).toEqual([
        'the training schedule stored in Postgres applies, not RETRAIN_CRON ("*/5 * * * *"; stored "0 3 * * *"): the ' +
          'RETRAIN_* settings only seed a deployment with none stored yet; change it through PUT /admin/training-schedule',
        'the incremental schedule stored in Postgres applies, not RETRAIN_INCREMENTAL_ENABLED (true; stored false): ' +
          'the RETRAIN_* settings only seed a deployment with none stored yet; change it through PUT /admin/training-schedule',
      ]);
      // The same cron spaced otherwise says nothing.
      warn.mockClear();
      await service({ RETRAIN_CRON: ' 0  3 * * * ' }).ensure();
      expect(warn).not.toHaveBeenCalled();
      // Once a person has changed it, the stored schedule is meant to differ from the settings.
      warn.mockClear();
      await other.set('full', { cron: '0 5 * * *' }, 'admin');
      await service({ RETRAIN_CRON: '*/5 * * * *' }).ensure();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
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
    await expect(schedule.set('full', { cron: '0 3 * * *', windowDays: 14 }, 'admin')).resolves.toMatchObject({
      cron: '0 3 * * *',
      windowDays: 14,
      updatedBy: 'admin',
    });
    expect(runner.registered).toEqual({ cron: '0 3 * * *', data: { windowDays: 14 } });
    await schedule.set('full', { cron: '*/10 * * * *' }, 'admin');
    expect(runner.registered).toEqual({ cron: '*/10 * * * *', data: { windowDays: 14 } });
  });

  it.each(['nope', '61 * * * *', '', '* * * * * * *'])(
    'set() rejects the cron %j as an invalid field named cron',
    async (cron) => {
      const error = await service()
        .set('full', { cron }, 'admin')
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

  it('runs the incremental cadence beside the full one, each job with its own data and rollout policy', async () => {
    const schedule = service({ RETRAIN_INCREMENTAL_ENABLED: 'true', RETRAIN_INCREMENTAL_CRON: '0 */2 * * *' });
    await expect(schedule.ensure()).resolves.toMatchObject({
      cron: '0 3 * * *',
      incremental: { cron: '0 */2 * * *', paused: false, nextRunAt: '2030-01-01T03:00:00.000Z' },
    });
    const policy = { confidence: 0.95, minEvents: 500, minUsers: 100, tolerance: 0.01, maxHours: 168 };
    const state = await schedule.set(
      'incremental',
      { cron: '15 * * * *', replay: 0.5, rolloutPolicy: policy },
      'admin',
    );
    expect(state.incremental).toMatchObject({ cron: '15 * * * *', replay: 0.5, epochs: 1, rolloutPolicy: policy });
    expect(state.updatedBy).toBe('config'); // the full cadence is untouched
    expect(Object.fromEntries(runner.jobs)).toEqual({
      [TrainingJobName.ScheduledRetrain]: { cron: '0 3 * * *', data: { windowDays: 7 } },
      [TrainingJobName.ScheduledIncremental]: {
        cron: '15 * * * *',
        data: { replay: 0.5, epochs: 1, rolloutPolicy: policy },
      },
    });
    await expect(schedule.pause('admin', 'incremental')).resolves.toMatchObject({
      paused: false,
      incremental: { paused: true, nextRunAt: null },
    });
    await expect(schedule.pause('admin', 'incremental')).rejects.toThrow('the incremental schedule is already paused');
    expect(runner.jobs.get(TrainingJobName.ScheduledIncremental)).toBeNull();
    expect(runner.registered).not.toBeNull();
    // A policy set to null clears it.
    await schedule.set('incremental', { rolloutPolicy: null }, 'admin');
    expect(repository.cadences.incremental?.rolloutPolicy).toBeNull();
  });

  it('warm-starts the full retrain for a set number of epochs when asked, in its job data; left out otherwise', async () => {
    const schedule = service({ RETRAIN_WARM_START: 'true', RETRAIN_EPOCHS: '1' });
    await expect(schedule.ensure()).resolves.toMatchObject({ warmStart: true, epochs: 1 });
    expect(runner.jobs.get(TrainingJobName.ScheduledRetrain)).toEqual({
      cron: '0 3 * * *',
      data: { windowDays: 7, warmStart: true, epochs: 1 },
    });
    // Back to a fresh model and the spec's epochs: the job's data is as before the settings existed.
    await expect(schedule.set('full', { warmStart: false, epochs: null }, 'admin')).resolves.toMatchObject({
      warmStart: false,
      epochs: null,
      updatedBy: 'admin',
    });
    expect(runner.jobs.get(TrainingJobName.ScheduledRetrain)).toEqual({ cron: '0 3 * * *', data: { windowDays: 7 } });
  });

  it('get() seeds and registers when nothing is stored yet', async () => {
    await expect(service().get()).resolves.toMatchObject({ cron: '0 3 * * *', updatedBy: 'config' });
    expect(runner.registered).not.toBeNull();
  });
});
