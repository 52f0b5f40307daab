import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { APP_CONFIG, CRON_TIMEZONE, cronProblem, type AppConfig } from '@app/config';

import {
  TrainingScheduleRepository,
  type RepeatableRetrain,
  type RetrainSchedule,
} from './training-schedule.repository';

export interface RetrainScheduleState extends RetrainSchedule {
  timezone: string;
  /** ISO timestamp of the next run; null while paused. */
  nextRunAt: string | null;
}

/** Who the stored schedule names when it was seeded from the configuration. */
const CONFIG_ACTOR = 'config';

/**
 * Scheduled retraining: one repeatable ScheduledRetrain job for the whole cluster, however many API and worker
 * processes start. The schedule itself (cron, window, paused) is stored in Redis; every process, at boot and after
 * every change, makes Bull's repeatable jobs match it under a cluster-wide lock, so concurrent boots and changes
 * converge on exactly one job. The job lives in Redis too, so a change applies at once everywhere.
 */
@Injectable()
export class TrainingScheduleService implements OnApplicationBootstrap {
  constructor(
    private readonly schedules: TrainingScheduleRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.ensure();
  }

  /** Seeds the schedule from the configuration if none is stored yet, and brings Bull's repeatable job in line with it. */
  ensure(): Promise<RetrainScheduleState> {
    return this.schedules.withLock(async () => {
      const schedule = await this.stored();
      return this.state(schedule, await this.sync(schedule, false));
    });
  }

  async get(): Promise<RetrainScheduleState> {
    const schedule = await this.schedules.read();
    if (!schedule) return this.ensure();
    return this.state(schedule, await this.schedules.repeatables());
  }

  async set(cron: string, windowDays: number | undefined, actor: string): Promise<RetrainScheduleState> {
    const problem = cronProblem(cron);
    if (problem) {
      throw new InvalidFieldsError([{ field: 'cron', message: `cron must be a cron expression (${problem})` }]);
    }
    return this.update(actor, (schedule) => ({ ...schedule, cron, windowDays: windowDays ?? schedule.windowDays }));
  }

  pause(actor: string): Promise<RetrainScheduleState> {
    return this.update(actor, (schedule) => {
      if (schedule.paused) throw new ConflictError('the training schedule is already paused');
      return { ...schedule, paused: true };
    });
  }

  resume(actor: string): Promise<RetrainScheduleState> {
    return this.update(actor, (schedule) => {
      if (!schedule.paused) throw new ConflictError('the training schedule is not paused');
      return { ...schedule, paused: false };
    });
  }

  private update(
    actor: string,
    change: (schedule: RetrainSchedule) => Omit<RetrainSchedule, 'updatedAt' | 'updatedBy'>,
  ): Promise<RetrainScheduleState> {
    return this.schedules.withLock(async () => {
      const schedule: RetrainSchedule = {
        ...change(await this.stored()),
        updatedAt: new Date().toISOString(),
        updatedBy: actor,
      };
      await this.schedules.write(schedule);
      // Re-registered even when the cron is unchanged: a repeatable job keeps the data it was added with (windowDays).
      return this.state(schedule, await this.sync(schedule, true));
    });
  }

  private stored(): Promise<RetrainSchedule> {
    return this.schedules.seed({
      cron: this.config.RETRAIN_CRON,
      windowDays: this.config.RETRAIN_WINDOW_DAYS,
      paused: !this.config.RETRAIN_ENABLED,
      updatedAt: new Date().toISOString(),
      updatedBy: CONFIG_ACTOR,
    });
  }

  /** Removes every repeatable job under our id but the one that matches `schedule`, adds that one if missing; caller holds the lock. */
  private async sync(schedule: RetrainSchedule, replace: boolean): Promise<RepeatableRetrain[]> {
    const registered = await this.schedules.repeatables();
    const keep =
      schedule.paused || replace
        ? undefined
        : registered.find((job) => job.cron === schedule.cron && job.tz === CRON_TIMEZONE);
    for (const job of registered) if (job !== keep) await this.schedules.removeRepeatable(job.key);
    if (keep) return [keep];
    if (schedule.paused) return [];
    await this.schedules.addRepeatable(schedule.cron, { windowDays: schedule.windowDays });
    return this.schedules.repeatables();
  }

  private state(schedule: RetrainSchedule, registered: RepeatableRetrain[]): RetrainScheduleState {
    const job = schedule.paused ? undefined : registered.find((j) => j.cron === schedule.cron);
    return { ...schedule, timezone: CRON_TIMEZONE, nextRunAt: job ? new Date(job.next).toISOString() : null };
  }
}
