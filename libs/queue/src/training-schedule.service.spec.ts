import { ConflictError, InvalidFieldsError } from '@app/common';
import { loadConfig } from '@app/config';

import type { ScheduledRetrainPayload } from './training-queue.contract';
import type { RepeatableRetrain, RetrainSchedule, TrainingScheduleRepository } from './training-schedule.repository';
import { TrainingScheduleService } from './training-schedule.service';

/** Redis and Bull in memory: the stored schedule and the repeatable jobs registered under our id. */
class FakeScheduleRepository implements Pick<TrainingScheduleRepository, keyof TrainingScheduleRepository> {
  stored: RetrainSchedule | null = null;
  jobs: (RepeatableRetrain & { data: ScheduledRetrainPayload })[] = [];
  added = 0;

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
  withLock<T>(work: () => Promise<T>) {
    return work();
  }
  async repeatables() {
    return this.jobs.map(({ key, cron, tz, next }) => ({ key, cron, tz, next }));
  }
  async removeRepeatable(key: string) {
    this.jobs = this.jobs.filter((job) => job.key !== key);
  }
  async addRepeatable(cron: string, data: ScheduledRetrainPayload) {
    this.added++;
    this.jobs.push({ key: `k${this.added}`, cron, tz: 'UTC', next: Date.UTC(2030, 0, 1, 3), data });
  }
}

describe('TrainingScheduleService', () => {
  let repository: FakeScheduleRepository;
  const service = (env: Record<string, string> = {}) =>
    new TrainingScheduleService(
      repository as unknown as TrainingScheduleRepository,
      loadConfig({ NODE_ENV: 'test', ...env }),
    );

  beforeEach(() => {
    repository = new FakeScheduleRepository();
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
    expect(repository.jobs).toEqual([expect.objectContaining({ cron: '0 4 * * *', data: { windowDays: 3 } })]);
  });

  it('keeps a stored schedule and a matching job: booting again changes nothing', async () => {
    await service().ensure();
    await service({ RETRAIN_CRON: '*/5 * * * *' }).ensure();
    expect(repository.stored?.cron).toBe('0 3 * * *');
    expect(repository.added).toBe(1);
  });

  it('replaces jobs that do not match the stored schedule', async () => {
    await repository.addRepeatable('*/5 * * * *', { windowDays: 1 });
    await repository.addRepeatable('0 3 * * *', { windowDays: 7 });
    await service().ensure();
    expect(repository.jobs).toEqual([expect.objectContaining({ key: 'k2', cron: '0 3 * * *' })]);
  });

  it('seeds a paused schedule without a job when RETRAIN_ENABLED=false', async () => {
    await expect(service({ RETRAIN_ENABLED: 'false' }).ensure()).resolves.toMatchObject({
      paused: true,
      nextRunAt: null,
    });
    expect(repository.jobs).toEqual([]);
  });

  it('set() re-registers the job with the new cron and window, and records who', async () => {
    const schedule = service();
    await schedule.ensure();
    await expect(schedule.set('0 3 * * *', 14, 'admin')).resolves.toMatchObject({
      cron: '0 3 * * *',
      windowDays: 14,
      updatedBy: 'admin',
    });
    // Same cron, new data: a repeatable job keeps the data it was added with, so it is added again.
    expect(repository.jobs).toEqual([expect.objectContaining({ cron: '0 3 * * *', data: { windowDays: 14 } })]);
    await schedule.set('*/10 * * * *', undefined, 'admin');
    expect(repository.jobs).toEqual([expect.objectContaining({ cron: '*/10 * * * *', data: { windowDays: 14 } })]);
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
    },
  );

  it('pause() removes the job and resume() brings it back; repeating either is a conflict', async () => {
    const schedule = service();
    await schedule.ensure();
    await expect(schedule.pause('admin')).resolves.toMatchObject({ paused: true, nextRunAt: null });
    expect(repository.jobs).toEqual([]);
    await expect(schedule.pause('admin')).rejects.toBeInstanceOf(ConflictError);
    await expect(schedule.resume('admin')).resolves.toMatchObject({ paused: false, cron: '0 3 * * *' });
    expect(repository.jobs).toHaveLength(1);
    await expect(schedule.resume('admin')).rejects.toBeInstanceOf(ConflictError);
  });

  it('get() seeds and registers when nothing is stored yet (Redis flushed)', async () => {
    await expect(service().get()).resolves.toMatchObject({ cron: '0 3 * * *', updatedBy: 'config' });
    expect(repository.jobs).toHaveLength(1);
  });
});
