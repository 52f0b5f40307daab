import Bull from 'bull';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';
import { LIVE_OPS_QUEUE, QUEUE_PREFIX, TRAINING_QUEUE } from '@app/queue';

import { startApi, type AppProcess } from './fixtures/app.process';
import { freePort } from './fixtures/free-port';
import { pause } from './fixtures/outage.fixture';
import { startRedisServer, type RedisServer } from './fixtures/store.servers';

const TOKEN = 'data-loss-test-admin-token';
const CHECK_SECONDS = 1;

// The repeatable jobs of a real API process on a redis-server of its own. Its data is flushed (as a Redis restarted
// without persistence would lose it): every repeatable job comes back by itself at the next check, and the retraining
// schedule comes back as it was stored, not as the configuration would seed it; a paused one stays paused.
describe('repeatable jobs (e2e: a real API process, its own Redis)', () => {
  let redis: RedisServer;
  let client: Redis;
  let queues: Bull.Queue[];
  let api: AppProcess;
  let base: string;

  const call = async (method: string, path: string, body?: object) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body && { 'content-type': 'application/json' }) },
      body: body && JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** The repeatable jobs registered in Redis, as `queue/name@cadence`. */
  const repeatables = async () =>
    (await Promise.all(queues.map((q) => q.getRepeatableJobs())))
      .flatMap((jobs, i) => jobs.map((job) => `${queues[i].name}/${job.name}@${job.cron ?? job.every}`))
      .sort();

  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url);
    queues = [LIVE_OPS_QUEUE, TRAINING_QUEUE].map((name) => new Bull(name, redis.url, { prefix: QUEUE_PREFIX }));
    const dataSource = await new DataSource(
      dataSourceOptions({ DATABASE_URL: process.env.DATABASE_URL! }),
    ).initialize();
    await dataSource.query('DELETE FROM training_schedule');
    await dataSource.destroy();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    api = await startApi({
      REDIS_URL: redis.url,
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      ADMIN_TOKEN: TOKEN,
      RETRAIN_ENABLED: 'true',
      RETRAIN_CRON: '0 4 * * *',
      REPEATABLE_JOBS_CHECK_SECONDS: String(CHECK_SECONDS),
    });
  }, 120_000);

  afterAll(async () => {
    await api?.stop();
    await Promise.all(queues.map((q) => q.close()));
    client?.disconnect();
    await redis?.destroy();
  });

  it('registers every repeatable job again without a restart; the schedule keeps its cron, or stays paused', async () => {
    // An admin's change: what must come back is this, not the configuration's seed.
    expect((await call('PUT', '/admin/training-schedule', { cron: '30 2 * * *', windowDays: 3 })).status).toBe(200);
    const registered = await repeatables();
    expect(registered).toEqual([
      `${LIVE_OPS_QUEUE}/live-join@5000`,
      `${LIVE_OPS_QUEUE}/prediction-log-partitions@3600000`,
      `${LIVE_OPS_QUEUE}/rollout-policy@60000`,
      `${TRAINING_QUEUE}/scheduled-retrain@30 2 * * *`,
    ]);

    await client.flushall();
    const flushed = performance.now();
    while ((await repeatables()).length < registered.length) await pause(50);
    const backSeconds = (performance.now() - flushed) / 1000;
    expect(await repeatables()).toEqual(registered);
    // Each is logged once back in Redis: the last line may reach this process a moment after Redis shows its job.
    const logged = () => api.output().match(/was missing from Redis; registered again/g)?.length ?? 0;
    while (logged() < registered.length && performance.now() - flushed < 10_000) await pause(50);
    expect(logged()).toBe(registered.length);
    expect((await call('GET', '/admin/training-schedule')).body).toMatchObject({
      cron: '30 2 * * *',
      windowDays: 3,
      paused: false,
      nextRunAt: expect.stringMatching(/T02:30:00\.000Z$/),
      updatedBy: 'admin',
    });

    expect((await call('POST', '/admin/training-schedule/pause')).status).toBe(200);
    await client.flushall();
    const liveOps = registered.filter((job) => job.startsWith(`${LIVE_OPS_QUEUE}/`));
    while ((await repeatables()).length < liveOps.length) await pause(50);
    // The check that put the live-ops jobs back has passed the schedule by too, or will within one more interval.
    await pause(2 * CHECK_SECONDS * 1000);
    expect(await repeatables()).toEqual(liveOps);
    expect((await call('GET', '/admin/training-schedule')).body).toMatchObject({ paused: true, nextRunAt: null });

    process.stdout.write(
      `redis data loss: the ${registered.length} repeatable jobs back ${backSeconds.toFixed(2)} s after FLUSHALL ` +
        `(REPEATABLE_JOBS_CHECK_SECONDS=${CHECK_SECONDS}), same API process (pid ${api.pid})\n`,
    );
  }, 60_000);

  it('fails a live-ops job that breaks the queue contract at once, unretried, naming the field', async () => {
    const [liveOps] = queues;
    const job = await liveOps.add('rollout-policy', { junk: 1 }, { attempts: 3 });
    while (!(await job.isFailed()) && !(await job.isCompleted())) await pause(25);
    const failed = (await liveOps.getJob(job.id))!;
    expect({ attemptsMade: failed.attemptsMade, failedReason: failed.failedReason }).toEqual({
      attemptsMade: 1,
      failedReason: 'junk is not a field of this job',
    });
  });
});
