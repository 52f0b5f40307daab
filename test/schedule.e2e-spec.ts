import { getQueueToken } from '@nestjs/bull';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Job, Queue } from 'bull';
import { DataSource } from 'typeorm';

import { APP_CONFIG, ConfigModule, loadConfig } from '@app/config';
import { TRAINING_QUEUE, TrainingControlModule, TrainingJobName, TrainingScheduleService } from '@app/queue';

/** A process of the cluster as far as the schedule goes: the training controls on their own connections. */
async function startProcess(env: Record<string, string> = {}): Promise<TestingModule> {
  return Test.createTestingModule({ imports: [ConfigModule, TrainingControlModule] })
    .overrideProvider(APP_CONFIG)
    .useValue(loadConfig({ ...process.env, ...env }))
    .compile();
}

describe('retraining schedule across processes (e2e)', () => {
  let a: TestingModule;
  let b: TestingModule;
  let queueA: Queue;
  let queueB: Queue;

  const repeatables = async () =>
    (await queueA.getRepeatableJobs()).filter((job) => job.name === TrainingJobName.ScheduledRetrain);

  beforeEach(async () => {
    // `a` allows a schedule every second, to count ticks in seconds.
    [a, b] = await Promise.all([
      startProcess({ SCHEDULE_MIN_INTERVAL_SECONDS: '1' }),
      startProcess({ RETRAIN_CRON: '*/10 * * * *' }),
    ]);
    queueA = a.get<Queue>(getQueueToken(TRAINING_QUEUE));
    queueB = b.get<Queue>(getQueueToken(TRAINING_QUEUE));
    await queueA.obliterate({ force: true });
    await a.get(DataSource).query('DELETE FROM training_schedule');
  });

  afterEach(async () => {
    await queueA.obliterate({ force: true });
    await a.get(DataSource).query('DELETE FROM training_schedule');
    await Promise.all([a.close(), b.close()]);
  });

  it('two processes booting at once register exactly one repeatable job, seeded by whichever came first', async () => {
    // init() runs the boot hooks, as a starting API or worker does: each calls ensure().
    await Promise.all([a.init(), b.init()]);
    const jobs = await repeatables();
    expect(jobs).toHaveLength(1);
    const { cron } = await a.get(TrainingScheduleService).get();
    expect(['0 3 * * *', '*/10 * * * *']).toContain(cron);
    expect(jobs[0]).toMatchObject({ name: TrainingJobName.ScheduledRetrain, cron, tz: 'UTC' });
    await expect(b.get(TrainingScheduleService).get()).resolves.toMatchObject({ cron });
  });

  it('concurrent ensure() calls converge on one job; the stored schedule wins over a process with other settings', async () => {
    const [serviceA, serviceB] = [a.get(TrainingScheduleService), b.get(TrainingScheduleService)];
    await serviceA.ensure();
    // A stray registration of the job (an older deployment's id and cron, say) is replaced, not kept beside.
    await queueB.add(
      TrainingJobName.ScheduledRetrain,
      { windowDays: 1 },
      { jobId: 'retrain-schedule', repeat: { cron: '*/5 * * * *' } },
    );
    expect(await repeatables()).toHaveLength(2);

    const states = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? serviceA : serviceB).ensure()));
    expect(new Set(states.map((s) => s.cron))).toEqual(new Set(['0 3 * * *']));
    expect(await repeatables()).toEqual([expect.objectContaining({ cron: '0 3 * * *', tz: 'UTC' })]);
    const delayed = (await queueA.getDelayed()).filter((job) => job.name === TrainingJobName.ScheduledRetrain);
    expect(delayed.map((job) => job.data)).toEqual([{ windowDays: 7 }]);
  });

  it('a change made through one process is what Bull runs, for every process', async () => {
    const [serviceA, serviceB] = [a.get(TrainingScheduleService), b.get(TrainingScheduleService)];
    await Promise.all([serviceA.ensure(), serviceB.ensure()]);

    const set = await serviceA.set('full', { cron: '*/30 * * * *', windowDays: 2 }, 'admin');
    expect(set).toMatchObject({ cron: '*/30 * * * *', windowDays: 2, paused: false, updatedBy: 'admin' });
    expect(await repeatables()).toEqual([
      expect.objectContaining({ cron: '*/30 * * * *', next: Date.parse(set.nextRunAt!) }),
    ]);
    await expect(serviceB.get()).resolves.toMatchObject({ cron: '*/30 * * * *', windowDays: 2 });

    await expect(serviceB.pause('admin')).resolves.toMatchObject({ paused: true, nextRunAt: null });
    expect(await repeatables()).toEqual([]);
    // A process starting while paused leaves it paused.
    await serviceA.ensure();
    expect(await repeatables()).toEqual([]);

    await expect(serviceA.resume('admin')).resolves.toMatchObject({ paused: false, cron: '*/30 * * * *' });
    expect(await repeatables()).toEqual([expect.objectContaining({ cron: '*/30 * * * *' })]);
  });

  it('RETRAIN_ENABLED=false seeds a paused schedule', async () => {
    const c = await startProcess({ RETRAIN_ENABLED: 'false' });
    await c.init();
    await expect(c.get(TrainingScheduleService).get()).resolves.toMatchObject({ paused: true, updatedBy: 'config' });
    expect(await repeatables()).toEqual([]);
    await c.close();
  });

  it("shows each cadence's last finished run: the version trained, the skip and why, or the failure", async () => {
    const window = { from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T01:00:00.000Z' };
    const trained = (versionId: number) => ({
      versionId,
      candidate: {},
      decision: 'canary',
      reason: 'gate passed',
      examples: { train: 10, holdout: 5 },
      trainingSeconds: 1,
    });
    const outcomes: Record<string, () => object> = {
      'full-1': () => trained(7),
      'manual-1': () => trained(8),
      'inc-1': () => trained(9),
      'inc-2': () => ({ skipped: { reason: 'no new events', parentVersionId: 9, window } }),
      'inc-3': () => {
        throw new Error('the parent could not be loaded');
      },
    };
    void queueA.process('*', async (job: Job) => outcomes[String(job.id)]());
    const run = async (name: string, jobId: string) => {
      const job = await queueA.add(name, {}, { jobId, attempts: 1 });
      await job.finished().catch(() => undefined);
    };
    const service = a.get(TrainingScheduleService);
    expect((await service.ensure()).lastRun).toBeNull();

    await run(TrainingJobName.ScheduledRetrain, 'full-1');
    await run(TrainingJobName.Train, 'manual-1'); // a manual job is no cadence's run
    await run(TrainingJobName.ScheduledIncremental, 'inc-1');
    let state = await service.get();
    expect(state.lastRun).toMatchObject({ jobId: 'full-1', outcome: 'trained', versionId: 7, decision: 'canary' });
    expect(state.incremental.lastRun).toMatchObject({ jobId: 'inc-1', outcome: 'trained', versionId: 9 });

    await run(TrainingJobName.ScheduledIncremental, 'inc-2');
    state = await service.get();
    expect(state.incremental.lastRun).toEqual({
      jobId: 'inc-2',
      finishedAt: expect.any(String),
      outcome: 'skipped',
      reason: 'no new events',
    });
    await run(TrainingJobName.ScheduledIncremental, 'inc-3');
    state = await service.get();
    expect(state.incremental.lastRun).toMatchObject({
      jobId: 'inc-3',
      outcome: 'failed',
      reason: 'the parent could not be loaded',
    });
    expect(state.lastRun).toMatchObject({ jobId: 'full-1' });
  });

  it('two workers running: the schedule fires once per tick, not once per worker', async () => {
    const runs: { worker: string; tick: number }[] = [];
    const consume = (queue: Queue, worker: string) =>
      void queue.process(TrainingJobName.ScheduledRetrain, async (job: Job) => {
        // Bull stores the run's scheduled time in opts.prevMillis (not in its typings).
        runs.push({ worker, tick: (job.opts as { prevMillis: number }).prevMillis });
      });
    consume(queueA, 'a');
    consume(queueB, 'b');

    const serviceA = a.get(TrainingScheduleService);
    await serviceA.ensure();
    // Every second (6-field cron); Bull hands each run to one worker, which then schedules the next.
    const started = Date.now();
    await serviceA.set('full', { cron: '* * * * * *' }, 'test');
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    await serviceA.pause('test');
    const stopped = Date.now();
    // Let a run that had just started finish before counting.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const ticks = Math.floor(stopped / 1000) - Math.floor(started / 1000);
    const distinct = new Set(runs.map((run) => run.tick));
    expect(distinct.size).toBe(runs.length);
    expect(runs.length).toBeGreaterThanOrEqual(ticks - 1);
    expect(runs.length).toBeLessThanOrEqual(ticks + 1);
    for (const tick of distinct) expect(tick % 1000).toBe(0);
  });
});
