import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bull';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { APP_CONFIG, CRON_TIMEZONE, cronProblem, type AppConfig } from '@app/config';
import { TrainingScheduleRepository, type RetrainSchedule } from '@app/db';

import { RepeatableJobRunner, type RepeatableJobHandle } from './repeatable-job.runner';
import { scheduledRetrainPayload, TRAINING_QUEUE, TrainingJobName } from './training-queue.contract';

export interface RetrainScheduleState extends RetrainSchedule {
  timezone: string;
  /** ISO timestamp of the next run; null while paused. */
  nextRunAt: string | null;
}

/** Who the stored schedule names when it was seeded from the configuration. */
const CONFIG_ACTOR = 'config';

/**
 * Scheduled retraining: one repeatable ScheduledRetrain job for the whole cluster (RepeatableJobRunner's, run by the
 * workers), however many API and worker processes start. The schedule itself (cron, window, paused) is stored in
 * Postgres, so that it outlives Redis's data: the first process seeds it from the configuration, every change goes
 * through the runner's sync (Bull's job matches it at once everywhere), and a job Redis lost is registered again from
 * it, so a paused schedule stays paused and a changed one keeps its cron.
 */
@Injectable()
export class TrainingScheduleService {
  private readonly job: RepeatableJobHandle;

  constructor(
    private readonly schedules: TrainingScheduleRepository,
    runner: RepeatableJobRunner,
    @InjectQueue(TRAINING_QUEUE) queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.job = runner.register({
      queue,
      name: TrainingJobName.ScheduledRetrain,
      data: scheduledRetrainPayload,
      schedule: async () => {
        const { paused, cron, windowDays } = await this.stored();
        return paused ? null : { cron, data: { windowDays } };
      },
    });
  }

  /** Seeds the schedule from the configuration if none is stored yet, and brings Bull's repeatable job in line with it. */
  ensure(): Promise<RetrainScheduleState> {
    return this.update();
  }

  async get(): Promise<RetrainScheduleState> {
    const schedule = await this.schedules.read();
    if (!schedule) return this.ensure();
    return this.state(schedule, await this.job.next());
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

  /** Applies `change` to the stored schedule (if any) and brings the job in line, under the runner's lock of the job. */
  private async update(
    actor?: string,
    change?: (schedule: RetrainSchedule) => Omit<RetrainSchedule, 'updatedAt' | 'updatedBy'>,
  ): Promise<RetrainScheduleState> {
    let schedule!: RetrainSchedule;
    const next = await this.job.sync(async () => {
      schedule = await this.stored();
      if (!change) return;
      schedule = { ...change(schedule), updatedAt: new Date().toISOString(), updatedBy: actor! };
      await this.schedules.write(schedule);
    });
    return this.state(schedule, next);
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

  private state(schedule: RetrainSchedule, next: number | null): RetrainScheduleState {
    const nextRunAt = schedule.paused || next === null ? null : new Date(next).toISOString();
    return { ...schedule, timezone: CRON_TIMEZONE, nextRunAt };
  }
}
