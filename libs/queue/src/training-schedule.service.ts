import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Job, Queue } from 'bull';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { APP_CONFIG, CRON_TIMEZONE, cronIntervalProblem, cronProblem, type AppConfig } from '@app/config';
import { TrainingScheduleRepository, type RetrainCadence, type RetrainCadences } from '@app/db';
import { readRolloutPolicy, type RolloutPolicy } from '@app/registry';

import { RepeatableJobRunner, type RepeatableJobHandle, type Schedule } from './repeatable-job.runner';
import {
  readTrainingOutcome,
  scheduledIncrementalPayload,
  scheduledRetrainPayload,
  TRAINING_QUEUE,
  TrainingJobName,
  type ScheduledIncrementalPayload,
  type ScheduledRetrainPayload,
  type TrainingJobResult,
} from './training-queue.contract';

/** How a cadence's last finished run ended: the version it trained, the skip and why, or its final failure. */
export type LastRun = { jobId: string; finishedAt: string } & (
  | { outcome: 'trained'; versionId: number; decision: TrainingJobResult['decision']; reason: string }
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'failed'; reason: string }
);

/** A cadence as the admin API shows it. */
export type CadenceState<C extends RetrainCadence> = Omit<RetrainCadences[C], 'rolloutPolicy'> & {
  rolloutPolicy: RolloutPolicy | null;
  timezone: string;
  /** ISO timestamp of the next run; null while paused. */
  nextRunAt: string | null;
  /** Null when none is among the training queue's last LAST_RUN_SCAN completed and failed jobs. */
  lastRun: LastRun | null;
};

/** The full retrain's state at the top level (as before there were two cadences), the incremental one's beside it. */
export type RetrainScheduleState = CadenceState<'full'> & { incremental: CadenceState<'incremental'> };

/** What an admin may change in a cadence (left out: unchanged); the cron is checked here, the rest by the API's DTOs. */
export type CadenceChange<C extends RetrainCadence> = Partial<
  Omit<RetrainCadences[C], 'paused' | 'updatedAt' | 'updatedBy' | 'rolloutPolicy'> & {
    rolloutPolicy: RolloutPolicy | null;
  }
>;

/** Completed and failed jobs (each newest first) looked through for a cadence's last run. */
const LAST_RUN_SCAN = 100;
/** Who the stored schedule names when it was seeded from the configuration. */
const CONFIG_ACTOR = 'config';
const NAMES: Record<RetrainCadence, string> = {
  full: 'the training schedule',
  incremental: 'the incremental schedule',
};
/** The setting that seeds each field of a cadence (RETRAIN_*_ENABLED: not paused). */
const SEEDED_BY: { [C in RetrainCadence]: Partial<Record<keyof RetrainCadences[C], string>> } = {
  full: {
    cron: 'RETRAIN_CRON',
    windowDays: 'RETRAIN_WINDOW_DAYS',
    warmStart: 'RETRAIN_WARM_START',
    epochs: 'RETRAIN_EPOCHS',
    paused: 'RETRAIN_ENABLED',
  },
  incremental: {
    cron: 'RETRAIN_INCREMENTAL_CRON',
    replay: 'RETRAIN_INCREMENTAL_REPLAY',
    epochs: 'RETRAIN_INCREMENTAL_EPOCHS',
    paused: 'RETRAIN_INCREMENTAL_ENABLED',
  },
};

/**
 * Scheduled retraining at two cadences: a full retrain (e.g. weekly: ScheduledRetrain) and an incremental warm start
 * from production (e.g. hourly: ScheduledIncremental), each one repeatable job for the whole cluster
 * (RepeatableJobRunner's, run by the workers), however many API and worker processes start. Each cadence (cron, its
 * settings, paused, rollout policy) is stored in Postgres, so that it outlives Redis's data: the first process seeds
 * it from the configuration, every change goes through the runner's sync of its job (Bull's job matches it at once
 * everywhere), and a job Redis lost is registered again from it.
 */
@Injectable()
export class TrainingScheduleService {
  private readonly logger = new Logger(TrainingScheduleService.name);
  private readonly jobs: Record<RetrainCadence, RepeatableJobHandle>;
  /** Cadences whose settings this process has compared with the stored ones. */
  private readonly compared = new Set<RetrainCadence>();

  constructor(
    private readonly schedules: TrainingScheduleRepository,
    runner: RepeatableJobRunner,
    @InjectQueue(TRAINING_QUEUE) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    const policy = (stored: object | null) => (stored ? { rolloutPolicy: readRolloutPolicy(stored) } : {});
    this.jobs = {
      full: runner.register<ScheduledRetrainPayload>({
        queue: this.queue,
        name: TrainingJobName.ScheduledRetrain,
        data: scheduledRetrainPayload,
        schedule: async () => {
          const { paused, cron, windowDays, warmStart, epochs, rolloutPolicy } = await this.stored('full');
          // Left out when off: a schedule stored before they existed keeps its repeatable job's id.
          const data = { windowDays, ...(warmStart && { warmStart }), ...(epochs !== null && { epochs }) };
          return paused ? null : { cron, data: { ...data, ...policy(rolloutPolicy) } };
        },
      }),
      incremental: runner.register<ScheduledIncrementalPayload>({
        queue: this.queue,
        name: TrainingJobName.ScheduledIncremental,
        data: scheduledIncrementalPayload,
        schedule: async (): Promise<Schedule<ScheduledIncrementalPayload> | null> => {
          const { paused, cron, replay, epochs, rolloutPolicy } = await this.stored('incremental');
          return paused ? null : { cron, data: { replay, epochs, ...policy(rolloutPolicy) } };
        },
      }),
    };
  }

  /** Seeds each cadence from the configuration if none is stored yet, and brings Bull's repeatable jobs in line. */
  async ensure(): Promise<RetrainScheduleState> {
    await this.update('full');
    await this.update('incremental');
    return this.get();
  }

  async get(): Promise<RetrainScheduleState> {
    const [full, incremental] = await Promise.all([this.schedules.read('full'), this.schedules.read('incremental')]);
    if (!full || !incremental) return this.ensure();
    const last = await this.lastRuns();
    return {
      ...this.state<'full'>(full, await this.jobs.full.next(), last[TrainingJobName.ScheduledRetrain]),
      incremental: this.state<'incremental'>(
        incremental,
        await this.jobs.incremental.next(),
        last[TrainingJobName.ScheduledIncremental],
      ),
    };
  }

  /**
   * Each scheduled job name's last finished run, from what Bull keeps of the training queue (the last 500 completed
   * and failed jobs): the newest LAST_RUN_SCAN of each list are read, a bounded cost whatever the history.
   */
  private async lastRuns(): Promise<Record<string, LastRun | null>> {
    const jobs = (await this.queue.getJobs(['completed', 'failed'], 0, LAST_RUN_SCAN - 1)).filter(
      (job): job is Job => job !== null && job.finishedOn !== undefined,
    );
    const last: Record<string, LastRun | null> = {
      [TrainingJobName.ScheduledRetrain]: null,
      [TrainingJobName.ScheduledIncremental]: null,
    };
    for (const job of jobs.sort((a, b) => b.finishedOn! - a.finishedOn!)) {
      if (!(job.name in last) || last[job.name]) continue;
      const run = { jobId: String(job.id), finishedAt: new Date(job.finishedOn!).toISOString() };
      // A failed job has no outcome; a completed one keeps the failedReason of any attempt that failed before.
      const { result, skipped } = readTrainingOutcome(job.returnvalue);
      last[job.name] = result
        ? { ...run, outcome: 'trained', versionId: result.versionId, decision: result.decision, reason: result.reason }
        : skipped
          ? { ...run, outcome: 'skipped', reason: skipped.reason }
          : { ...run, outcome: 'failed', reason: job.failedReason ?? 'unknown' };
    }
    return last;
  }

  /** Changes a cadence's cron and settings (those left out keep their value) and brings its job in line. */
  async set<C extends RetrainCadence>(
    cadence: C,
    change: CadenceChange<C>,
    actor: string,
  ): Promise<RetrainScheduleState> {
    if (change.cron !== undefined) {
      const problem = cronProblem(change.cron);
      if (problem)
        throw new InvalidFieldsError([{ field: 'cron', message: `cron must be a cron expression (${problem})` }]);
      const tooOften = cronIntervalProblem(change.cron, this.config.SCHEDULE_MIN_INTERVAL_SECONDS);
      if (tooOften) throw new InvalidFieldsError([{ field: 'cron', message: `cron ${tooOften}` }]);
    }
    const defined = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
    await this.update(cadence, actor, (schedule) => ({ ...schedule, ...defined }));
    return this.get();
  }

  async pause(actor: string, cadence: RetrainCadence = 'full'): Promise<RetrainScheduleState> {
    await this.update(cadence, actor, (schedule) => {
      if (schedule.paused) throw new ConflictError(`${NAMES[cadence]} is already paused`);
      return { ...schedule, paused: true };
    });
    return this.get();
  }

  async resume(actor: string, cadence: RetrainCadence = 'full'): Promise<RetrainScheduleState> {
    await this.update(cadence, actor, (schedule) => {
      if (!schedule.paused) throw new ConflictError(`${NAMES[cadence]} is not paused`);
      return { ...schedule, paused: false };
    });
    return this.get();
  }

  /** Applies `change` to the stored cadence (if any) and brings its job in line, under the runner's lock of the job. */
  private async update<C extends RetrainCadence>(
    cadence: C,
    actor?: string,
    change?: (schedule: RetrainCadences[C]) => RetrainCadences[C],
  ): Promise<void> {
    await this.jobs[cadence].sync(async () => {
      const schedule = await this.stored(cadence);
      if (!change) return;
      await this.schedules.write(cadence, {
        ...change(schedule),
        updatedAt: new Date().toISOString(),
        updatedBy: actor!,
      });
    });
  }

  private async stored<C extends RetrainCadence>(cadence: C): Promise<RetrainCadences[C]> {
    const seed = { updatedAt: new Date().toISOString(), updatedBy: CONFIG_ACTOR, rolloutPolicy: null };
    const c = this.config;
    const seeds: RetrainCadences = {
      full: {
        ...seed,
        cron: c.RETRAIN_CRON,
        windowDays: c.RETRAIN_WINDOW_DAYS,
        warmStart: c.RETRAIN_WARM_START,
        epochs: c.RETRAIN_EPOCHS ?? null,
        paused: !c.RETRAIN_ENABLED,
      },
      incremental: {
        ...seed,
        cron: c.RETRAIN_INCREMENTAL_CRON,
        replay: c.RETRAIN_INCREMENTAL_REPLAY,
        epochs: c.RETRAIN_INCREMENTAL_EPOCHS,
        paused: !c.RETRAIN_INCREMENTAL_ENABLED,
      },
    };
    const stored = await this.schedules.seed(cadence, seeds[cadence]);
    if (!this.compared.has(cadence)) {
      this.compared.add(cadence);
      const drift = configDrift(cadence, stored, seeds[cadence]);
      if (drift)
        this.logger.warn(
          `${NAMES[cadence]} stored in Postgres applies, not ${drift}: the RETRAIN_* settings only seed a deployment ` +
            'with none stored yet; change it through PUT /admin/training-schedule',
        );
    }
    return stored;
  }

  private state<C extends RetrainCadence>(
    schedule: RetrainCadences[C],
    next: number | null,
    lastRun: LastRun | null,
  ): CadenceState<C> {
    const nextRunAt = schedule.paused || next === null ? null : new Date(next).toISOString();
    return {
      ...schedule,
      rolloutPolicy: schedule.rolloutPolicy && readRolloutPolicy(schedule.rolloutPolicy),
      timezone: CRON_TIMEZONE,
      nextRunAt,
      lastRun,
    };
  }
}

/**
 * The settings that say otherwise than a cadence still as the configuration seeded it (no person changed it since), as
 * `RETRAIN_CRON ("0 4 * * *"; stored "0 3 * * *")`; undefined when none does or a person has changed it: then what is
 * stored is meant to differ.
 */
function configDrift<C extends RetrainCadence>(
  cadence: C,
  stored: RetrainCadences[C],
  seed: RetrainCadences[C],
): string | undefined {
  if (stored.updatedBy !== CONFIG_ACTOR) return undefined;
  const settings = Object.entries(SEEDED_BY[cadence]) as [keyof RetrainCadences[C], string][];
  const differing = settings.flatMap(([field, setting]) => {
    const [ours, theirs] = field === 'paused' ? [!seed[field], !stored[field]] : [seed[field], stored[field]];
    // A cron is the same schedule however its fields are spaced.
    const spaced = (cron: unknown) => String(cron).trim().split(/\s+/).join(' ');
    const same = field === 'cron' ? spaced(ours) === spaced(theirs) : ours === theirs;
    return same ? [] : [`${setting} (${JSON.stringify(ours)}; stored ${JSON.stringify(theirs)})`];
  });
  return differing.length > 0 ? differing.join(', ') : undefined;
}
