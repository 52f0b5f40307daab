import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Job, JobInformation, Queue } from 'bull';
import type { z } from 'zod';

import { InvalidFieldsError, UnavailableError } from '@app/common';
import { APP_CONFIG, CRON_TIMEZONE, type AppConfig } from '@app/config';

import { parseJobData } from './job-data';
import { RedisLocks } from './redis-locks';
import { QUEUE_PREFIX } from './training-queue.contract';

/** When a job runs: every `every` ms (on the multiples of it since the epoch, as Bull counts), or on a cron in UTC. */
export type Cadence = { every: number } | { cron: string };

/** A cadence and the data each run gets (Bull repeats a job with the data it was added with). */
export type Schedule<Data> = Cadence & { data: Data };

/** How long the boot waits for its repeatable jobs to be brought in line before it goes on (Redis silent). */
const BOOT_CONVERGE_MS = 5_000;

/** A job the cluster runs repeatedly: what `RepeatableJobRunner.register` takes. */
export interface RepeatableJob<Data> {
  queue: Queue;
  /** Unique within its queue. */
  name: string;
  /** The data's schema, from the queue contract: a run taken with other data fails at once, its fields named. */
  data: z.ZodType<Data>;
  /** Fixed, or read from where it is kept each time the runner checks it (null: no runs, as while paused). */
  schedule: Schedule<Data> | (() => Promise<Schedule<Data> | null>);
  /**
   * The work of one run, on whichever process takes the tick. Left out when another application consumes the queue
   * (the worker runs the scheduled retraining).
   */
  run?(data: Data, job: Job<Data>): Promise<unknown>;
}

export interface RepeatableJobHandle {
  /** Epoch ms of the next run; null when none is registered (paused). */
  next(): Promise<number | null>;
  /**
   * Under the job's cluster-wide lock: runs `change` (a write of the stored schedule), then makes Bull's repeatable
   * job match the schedule. Returns the next run.
   */
  sync(change?: () => Promise<void>): Promise<number | null>;
}

interface Entry {
  job: RepeatableJob<unknown>;
  /** Brought in line with its schedule since this process started (until then, each check tries again). */
  converged: boolean;
}

/** Longer than bringing one job in line takes (a few round trips), short enough that a crashed holder blocks little. */
const SCHEDULE_LOCK_MS = 5_000;
/**
 * How long a sync (a schedule change asked for through the API) waits for the job's lock before it gives up, writing
 * nothing: well within the API's Redis route deadline (5 s), so that contention alone never answers 503 for a change
 * that lands later (a Redis slower than the deadline still can: see docs/training-loop.md).
 */
const SYNC_LOCK_WAIT_MS = 2_000;
/** A run's lock; its holder extends it every third of this while the run goes on, so a dead holder frees it this soon. */
const RUN_LOCK_MS = 30_000;

/**
 * The one way to run a repeatable job in the cluster. Every process registers the same jobs (a provider does when it is
 * constructed); the runner then keeps exactly one Bull repeatable job per name, whatever the number of processes:
 * - at boot, and on every sync(), it makes Bull match the job's schedule under a lock of the job's (a repeatable
 *   with another cadence or data, left by an older process or setting, is replaced; none while the schedule is null);
 * - every REPEATABLE_JOBS_CHECK_SECONDS it registers again a job that Redis lost (restarted empty, flushed), from
 *   the schedule it reads then, so the cluster's chores come back without a restart;
 * - each tick is one Bull job, taken by one process; a job with `run` never runs on two processes at once (a run
 *   holds the job's run lock; a tick that finds it held is skipped), and a failed run is not retried: the next tick
 *   is the retry;
 * - a job taken is checked against its data schema first: an invalid one, from whatever producer, fails at once.
 * A queue whose jobs the runner runs is the runner's alone: it takes every job of that queue.
 */
@Injectable()
export class RepeatableJobRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RepeatableJobRunner.name);
  /** Queue name → job name → entry. */
  private readonly queues = new Map<string, { queue: Queue; entries: Map<string, Entry> }>();
  private started = false;
  private checking?: Promise<void>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly locks: RedisLocks,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  register<Data>(job: RepeatableJob<Data>): RepeatableJobHandle {
    if (this.started) throw new Error(`repeatable job ${job.name} registered after boot: register it when constructed`);
    let queue = this.queues.get(job.queue.name);
    if (!queue) this.queues.set(job.queue.name, (queue = { queue: job.queue, entries: new Map() }));
    if (queue.entries.has(job.name)) throw new Error(`repeatable job ${job.name} is registered twice`);
    const runHere = [...queue.entries.values()].map((e) => e.job.run !== undefined);
    if (runHere.some((here) => here !== (job.run !== undefined)))
      throw new Error(`queue ${job.queue.name}: its repeatable jobs must all be run here, or all elsewhere`);
    const entry: Entry = { job: job as RepeatableJob<unknown>, converged: false };
    queue.entries.set(job.name, entry);
    return {
      next: async () => nextRun(await this.registered(entry)),
      sync: (change) =>
        this.exclusive(
          entry,
          async () => {
            await change?.();
            // Stored, and until Bull is brought in line (converge may fail half-way), the periodic check does it.
            entry.converged = false;
            return nextRun(await this.converge(entry));
          },
          SYNC_LOCK_WAIT_MS,
        ),
    };
  }

  async onApplicationBootstrap(): Promise<void> {
    this.started = true;
    // Waited for a few seconds only: a Redis that takes connections and never answers would hold the whole boot (the
    // API would never listen, though it can serve degraded); what this does not bring in line, the periodic check does.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.convergeAll(),
      new Promise((resolve) => (timer = setTimeout(resolve, BOOT_CONVERGE_MS))),
    ]).finally(() => clearTimeout(timer));
    for (const { queue, entries } of this.queues.values()) {
      if (![...entries.values()].some((e) => e.job.run)) continue;
      // process() settles only when the queue closes; it rejects if it cannot start.
      queue
        .process('*', entries.size, (job: Job) => this.take(entries, job))
        .catch((e: Error) => this.logger.error(`queue ${queue.name} takes no jobs: ${e.message}`));
    }
    this.timer = setInterval(() => void this.check(), this.config.REPEATABLE_JOBS_CHECK_SECONDS * 1000).unref();
  }

  private async convergeAll(): Promise<void> {
    for (const { entries } of this.queues.values())
      for (const entry of entries.values()) await this.exclusive(entry, () => this.converge(entry)).catch(this.warn);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /**
   * Registers again the jobs Redis lost (and brings in line the ones not yet brought in line since boot). A job found
   * registered is left as it is: processes whose settings differ do not take turns replacing each other's.
   */
  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    for (const { queue, entries } of this.queues.values()) {
      // Redis unreachable: nothing to do until it is back (its connection reports the outage).
      const listed = await queue.getRepeatableJobs().catch(() => undefined);
      if (!listed) continue;
      const names = new Set(listed.map((r) => r.name));
      for (const entry of entries.values()) {
        if (entry.converged && names.has(entry.job.name)) continue;
        // A paused schedule has nothing to put back, and no lock needs taking to know it.
        if (entry.converged && (await scheduleOf(entry.job).catch(() => null)) === null) continue;
        await this.exclusive(entry, async () => {
          const missing = (await this.registered(entry)) === undefined;
          if (entry.converged && !missing) return;
          const registered = await this.converge(entry);
          if (missing && registered)
            this.logger.warn(`repeatable job ${entry.job.name} was missing from Redis; registered again`);
        }).catch(this.warn);
      }
    }
  }

  /** Makes the job's repeatables in Bull match its schedule; the caller holds the job's lock. */
  private async converge(entry: Entry): Promise<JobInformation | undefined> {
    const { queue, name } = entry.job;
    const schedule = await scheduleOf(entry.job);
    const id = schedule && repeatId(name, schedule.data);
    const registered = (await queue.getRepeatableJobs()).filter((r) => r.name === name);
    let keep = schedule ? registered.find((r) => r.id === id && sameCadence(r, schedule)) : undefined;
    for (const r of registered) if (r !== keep) await queue.removeRepeatableByKey(r.key);
    if (schedule && !keep) {
      await queue.add(name, schedule.data, { jobId: id!, repeat: repeatOptions(schedule) });
      keep = await this.registered(entry);
      this.logger.log(`repeatable job ${name}: ${'every' in schedule ? `every ${schedule.every} ms` : schedule.cron}`);
    }
    entry.converged = true;
    return keep;
  }

  private async registered(entry: Entry): Promise<JobInformation | undefined> {
    return (await entry.job.queue.getRepeatableJobs()).find((r) => r.name === entry.job.name);
  }

  private async exclusive<T>(entry: Entry, work: () => Promise<T>, waitMs?: number): Promise<T> {
    const lease = await this.locks.acquire(lockKey(entry, 'schedule'), SCHEDULE_LOCK_MS, waitMs);
    if (!lease)
      throw new UnavailableError(`${entry.job.name}'s schedule lock is held elsewhere; nothing was changed: retry`, {
        retryAfterSeconds: 1,
      });
    return lease.hold(work);
  }

  /** One tick: checked, then run under the job's run lock; any failure is final (the next tick is the retry). */
  private async take(entries: Map<string, Entry>, job: Job): Promise<unknown> {
    const entry = entries.get(job.name);
    try {
      if (!entry) {
        throw new InvalidFieldsError([
          { field: 'name', message: `name: ${job.queue.name} has no repeatable job named ${JSON.stringify(job.name)}` },
        ]);
      }
      const data = parseJobData(entry.job.data, job.data);
      const lease = await this.locks.tryAcquire(lockKey(entry, 'run'), RUN_LOCK_MS);
      if (!lease) {
        this.logger.warn(`repeatable job ${job.name}: tick skipped, the previous run is still going`);
        return { skipped: 'the previous run was still going' };
      }
      return await lease.hold(() => entry.job.run!(data, job));
    } catch (e) {
      await job.discard();
      this.logger.warn(`repeatable job ${job.name} (${job.id}) failed: ${(e as Error).message}`);
      throw e;
    }
  }

  private readonly warn = (e: Error) => this.logger.warn(`repeatable jobs not brought in line: ${e.message}`);
}

async function scheduleOf<Data>(job: RepeatableJob<Data>): Promise<Schedule<Data> | null> {
  return typeof job.schedule === 'function' ? job.schedule() : job.schedule;
}

/**
 * The repeatable's job id carries a digest of its data: Bull tells registered repeatables apart by name, id and
 * cadence only, and repeats the data a job was added with, so new data must make a new repeatable.
 */
function repeatId(name: string, data: unknown): string {
  return `${name}@${createHash('sha256').update(JSON.stringify(data)).digest('base64url').slice(0, 12)}`;
}

function sameCadence(registered: JobInformation, cadence: Cadence): boolean {
  return 'every' in cadence
    ? Number(registered.every) === cadence.every
    : registered.cron === cadence.cron && registered.tz === CRON_TIMEZONE;
}

function repeatOptions(cadence: Cadence): { every: number } | { cron: string; tz: string } {
  return 'every' in cadence ? { every: cadence.every } : { cron: cadence.cron, tz: CRON_TIMEZONE };
}

function nextRun(registered: JobInformation | undefined): number | null {
  return registered ? registered.next : null;
}

function lockKey({ job }: Entry, kind: 'schedule' | 'run'): string {
  return `${QUEUE_PREFIX}:${job.queue.name}:${job.name}:${kind}-lock`;
}
