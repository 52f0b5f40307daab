import Bull, { type Job } from 'bull';
import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';
import { QUEUE_PREFIX, TRAINING_QUEUE, TrainingJobName } from '@app/queue';

import { startWorker, type AppProcess } from './fixtures/app.process';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('scheduled retraining with two real worker processes (e2e)', () => {
  let queue: Bull.Queue;
  let dataSource: DataSource;
  let workers: AppProcess[] = [];

  beforeAll(async () => {
    queue = new Bull(TRAINING_QUEUE, process.env.REDIS_URL!, { prefix: QUEUE_PREFIX });
    dataSource = await new DataSource(dataSourceOptions({ DATABASE_URL: process.env.DATABASE_URL! })).initialize();
    await queue.obliterate({ force: true });
    await dataSource.query('DELETE FROM training_schedule');
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await queue.obliterate({ force: true });
    await dataSource.query('DELETE FROM training_schedule');
    await queue.close();
    await dataSource.destroy();
  });

  it('registers one schedule and runs each tick once, not once per worker', async () => {
    // Every second (6-field cron, allowed by the low minimum). There is no production model, so each run fails at
    // once: only runs are counted.
    const env = { RETRAIN_ENABLED: 'true', RETRAIN_CRON: '* * * * * *', SCHEDULE_MIN_INTERVAL_SECONDS: '1' };
    workers = await Promise.all([startWorker(env), startWorker(env)]);
    const started = Date.now();
    expect(
      (await queue.getRepeatableJobs()).filter((job) => job.name === TrainingJobName.ScheduledRetrain),
    ).toHaveLength(1);
    await sleep(6_000);
    await Promise.all(workers.map((w) => w.stop()));
    const stopped = Date.now();

    const runs = (await queue.getJobs(['completed', 'failed', 'delayed', 'active', 'waiting'])).filter(
      (job: Job) =>
        job.name === TrainingJobName.ScheduledRetrain && job.processedOn !== undefined && job.processedOn !== null,
    );
    // Bull keeps a run's scheduled time in opts.prevMillis (not in its typings).
    const ticks = runs.map((job) => (job.opts as { prevMillis: number }).prevMillis);
    expect(new Set(ticks).size).toBe(ticks.length);
    const whileBothRan = ticks.filter((t) => t >= started && t <= stopped).length;
    expect(whileBothRan).toBeGreaterThanOrEqual(Math.floor((stopped - started) / 1000) - 2);
    expect(whileBothRan).toBeLessThanOrEqual(Math.ceil((stopped - started) / 1000) + 1);
  }, 120_000);
});
