import { BullModule, getQueueToken } from '@nestjs/bull';
import type { TestingModule } from '@nestjs/testing';
import type { Job, Queue } from 'bull';
import Redis from 'ioredis';
import { z } from 'zod';

import { UnavailableError } from '@app/common';
import { QUEUE_PREFIX, QueueModule, RepeatableJobRunner, type RepeatableJobHandle, type Schedule } from '@app/queue';
import { RedisModule } from '@app/redis';

import { startRedisServer, type RedisServer } from '../fixtures/store.servers';
import { compileMediumModule } from './medium.module';

const QUEUE = 'runner-medium';
const JOB = 'chore';
const data = z.strictObject({ n: z.number().int() });
type Data = z.infer<typeof data>;

interface Run {
  process: string;
  tick: number;
  start: number;
  end: number;
}

/** Bull keeps a run's scheduled time in opts.prevMillis (not in its typings). */
const tickOf = (job: Job) => (job.opts as { prevMillis: number }).prevMillis;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * RepeatableJobRunner on a real Redis (a server of this spec's own, which it flushes) and Bull: each test's
 * "processes" are separate Nest modules with their own connections, as separate API processes would be.
 */
describe('RepeatableJobRunner (medium: real Redis and Bull)', () => {
  let redis: RedisServer;
  let client: Redis;
  let processes: TestingModule[] = [];

  /** A process that registers the job `JOB` (see RepeatableJob) and boots. */
  async function startProcess(
    job: {
      schedule: Schedule<Data> | (() => Promise<Schedule<Data> | null>);
      run?: (data: Data, job: Job<Data>) => Promise<unknown>;
    },
    env: Record<string, string> = {},
  ): Promise<{ queue: Queue; runner: RepeatableJobRunner; handle: RepeatableJobHandle }> {
    const moduleRef = await compileMediumModule(
      { imports: [RedisModule, QueueModule, BullModule.registerQueue({ name: QUEUE })] },
      { REDIS_URL: redis.url, ...env },
    );
    processes.push(moduleRef);
    const queue = moduleRef.get<Queue>(getQueueToken(QUEUE));
    const runner = moduleRef.get(RepeatableJobRunner);
    const handle = runner.register({ queue, name: JOB, data, ...job });
    await moduleRef.init();
    return { queue, runner, handle };
  }

  const repeatables = async (queue: Queue) => (await queue.getRepeatableJobs()).filter((r) => r.name === JOB);

  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url);
  });

  afterEach(async () => {
    await Promise.all(processes.map((p) => p.close()));
    processes = [];
    await client.flushall();
  });

  afterAll(async () => {
    client.disconnect();
    await redis?.destroy();
  });

  it('runs each tick once, on one process at a time: a tick due while a run goes on is skipped', async () => {
    const runs: Run[] = [];
    const taken: number[] = [];
    const job = (name: string) => ({
      schedule: { every: 250, data: { n: 1 } },
      run: async (_: Data, bullJob: Job<Data>) => {
        const start = performance.now();
        taken.push(tickOf(bullJob));
        // Longer than two ticks: the next ticks come due while this run holds the job.
        await sleep(600);
        runs.push({ process: name, tick: tickOf(bullJob), start, end: performance.now() });
      },
    });
    const [a] = await Promise.all([startProcess(job('a')), startProcess(job('b'))]);
    expect(await repeatables(a.queue)).toHaveLength(1);

    await sleep(3_000);
    // No more ticks; then the run under way, if any, finishes.
    for (const { key } of await repeatables(a.queue)) await a.queue.removeRepeatableByKey(key);
    await sleep(800);

    expect(runs.length).toBeGreaterThanOrEqual(2);
    runs.sort((x, y) => x.start - y.start);
    for (let i = 1; i < runs.length; i++) expect(runs[i].start).toBeGreaterThanOrEqual(runs[i - 1].end);
    const skipped = (await a.queue.getCompleted()).filter((j) => j.returnvalue?.skipped !== undefined);
    expect(skipped.length).toBeGreaterThan(0);
    // Every tick was taken once: by a run, or by a skip.
    const ticks = [...taken, ...skipped.map(tickOf)];
    expect(new Set(ticks).size).toBe(ticks.length);
  });

  it('brings Bull in line with the schedule: at boot, on sync, and to nothing while it is null', async () => {
    let schedule: Schedule<Data> | null = { every: 60_000, data: { n: 1 } };
    const seed = await startProcess({ schedule: { every: 1_000, data: { n: 0 } } });
    // A stray repeatable of the job (another cadence and id, as an older release left it) is replaced at boot.
    await seed.queue.add(JOB, { n: 0 }, { jobId: 'old', repeat: { every: 5_000 } });
    expect(await repeatables(seed.queue)).toHaveLength(2);

    // Two processes booting at once converge on one repeatable, the one of the schedule.
    const [a] = await Promise.all([
      startProcess({ schedule: async () => schedule }),
      startProcess({ schedule: async () => schedule }),
    ]);
    expect(await repeatables(a.queue)).toEqual([expect.objectContaining({ every: 60_000 })]);
    expect((await a.handle.next())! % 60_000).toBe(0);

    // New data with the same cadence is a new repeatable (Bull repeats the data a job was added with).
    schedule = { every: 60_000, data: { n: 2 } };
    await a.handle.sync();
    expect(await repeatables(a.queue)).toHaveLength(1);
    expect((await a.queue.getDelayed()).map((j) => j.data)).toEqual([{ n: 2 }]);

    schedule = null;
    await expect(a.handle.sync()).resolves.toBeNull();
    expect(await repeatables(a.queue)).toEqual([]);
    expect(await a.queue.getDelayed()).toEqual([]);
  });

  it('gives a change up, writing nothing, when another holds the lock past the wait', async () => {
    const { handle } = await startProcess({ schedule: { cron: '0 3 * * *', data: { n: 1 } } });
    await client.set(`${QUEUE_PREFIX}:${QUEUE}:${JOB}:schedule-lock`, 'another process', 'PX', 8_000);
    const change = jest.fn(async () => undefined);
    const started = Date.now();
    await expect(handle.sync(change)).rejects.toThrow(UnavailableError);
    // Within the API's route deadline (5 s): the caller hears it before any write, never after one.
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(change).not.toHaveBeenCalled();
  });

  it('brings Bull in line at the next check when a change was stored but Bull failed half-way', async () => {
    let schedule: Schedule<Data> = { cron: '0 3 * * *', data: { n: 1 } };
    const { queue, runner, handle } = await startProcess({ schedule: async () => schedule });
    const remove = jest.spyOn(queue, 'removeRepeatableByKey').mockRejectedValueOnce(new Error('Connection is closed.'));
    await expect(
      handle.sync(async () => {
        schedule = { cron: '30 5 * * *', data: { n: 1 } };
      }),
    ).rejects.toThrow('Connection is closed.');
    remove.mockRestore();
    expect(await repeatables(queue)).toEqual([expect.objectContaining({ cron: '0 3 * * *' })]);
    await runner.check();
    expect(await repeatables(queue)).toEqual([expect.objectContaining({ cron: '30 5 * * *' })]);
  });

  it('registers a job again after Redis lost its data, from the schedule read then; none while it is null', async () => {
    let schedule: Schedule<Data> | null = { cron: '0 3 * * *', data: { n: 1 } };
    const { queue, runner } = await startProcess({ schedule: async () => schedule });
    const [registered] = await repeatables(queue);

    await client.flushall();
    expect(await repeatables(queue)).toEqual([]);
    await runner.check();
    expect(await repeatables(queue)).toEqual([registered]);

    schedule = null;
    await client.flushall();
    await runner.check();
    expect(await repeatables(queue)).toEqual([]);
  });

  it('puts a lost job back by itself within a check interval, and its ticks run again', async () => {
    const ran: number[] = [];
    const { queue } = await startProcess(
      { schedule: { every: 200, data: { n: 1 } }, run: async (_, job) => void ran.push(tickOf(job)) },
      { REPEATABLE_JOBS_CHECK_SECONDS: '0.5' },
    );
    while (ran.length === 0) await sleep(50);

    await client.flushall();
    const flushedAt = Date.now();
    while ((await repeatables(queue)).length === 0) await sleep(50);
    while (!ran.some((tick) => tick > flushedAt)) await sleep(50);
  });

  it('fails a job whose data or name the contract does not know at once, unretried, naming the field', async () => {
    const { queue } = await startProcess({
      schedule: { cron: '0 3 * * *', data: { n: 1 } },
      run: async ({ n }) => {
        if (n === 13) throw new Error('unlucky');
      },
    });
    const failed = async (name: string, payload: unknown) => {
      const job = await queue.add(name, payload, { attempts: 3 });
      for (;;) {
        const state = await job.getState();
        if (state === 'failed' || state === 'completed') break;
        await sleep(25);
      }
      return (await queue.getJob(job.id))!;
    };

    const malformed = await failed(JOB, {});
    expect(malformed).toMatchObject({ attemptsMade: 1 });
    expect(malformed.failedReason).toMatch(/^n: /);
    expect((await failed(JOB, { n: 1, extra: true })).failedReason).toBe('extra is not a field of this job');
    expect((await failed('nonesuch', { n: 1 })).failedReason).toMatch(/no repeatable job named "nonesuch"/);
    // A run that fails is not retried either: the next tick is the retry.
    expect(await failed(JOB, { n: 13 })).toMatchObject({ attemptsMade: 1, failedReason: 'unlucky' });
  });
});
