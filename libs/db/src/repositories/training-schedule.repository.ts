import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** The cluster's retraining schedule, as stored. */
export interface RetrainSchedule {
  cron: string;
  windowDays: number;
  paused: boolean;
  /** ISO timestamp. */
  updatedAt: string;
  /** 'config' for the seed, else the admin actor. */
  updatedBy: string;
}

interface ScheduleRow {
  cron: string;
  window_days: number;
  paused: boolean;
  updated_at: Date;
  updated_by: string;
}

const COLUMNS = 'cron, window_days, paused, updated_at, updated_by';

/**
 * The retraining schedule in Postgres (one row), where it outlives Redis's data; Bull's repeatable job that carries it
 * out is RepeatableJobRunner's. Changes are serialised by the runner's lock of the job, not here.
 */
@Injectable()
export class TrainingScheduleRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async read(): Promise<RetrainSchedule | null> {
    const [row] = (await this.dataSource.query(`SELECT ${COLUMNS} FROM training_schedule`)) as ScheduleRow[];
    return row ? toSchedule(row) : null;
  }

  /** Stores `schedule` unless one is stored already (the first process's seed wins), and returns the stored one. */
  async seed(schedule: RetrainSchedule): Promise<RetrainSchedule> {
    const stored = await this.read();
    if (stored) return stored;
    await this.dataSource.query(
      `INSERT INTO training_schedule (id, ${COLUMNS}) VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
      values(schedule),
    );
    return (await this.read())!;
  }

  async write(schedule: RetrainSchedule): Promise<void> {
    await this.dataSource.query(
      `UPDATE training_schedule SET (${COLUMNS}) = ($1, $2, $3, $4, $5) WHERE id = 1`,
      values(schedule),
    );
  }
}

function values({ cron, windowDays, paused, updatedAt, updatedBy }: RetrainSchedule): unknown[] {
  return [cron, windowDays, paused, updatedAt, updatedBy];
}

function toSchedule(row: ScheduleRow): RetrainSchedule {
  return {
    cron: row.cron,
    windowDays: row.window_days,
    paused: row.paused,
    updatedAt: row.updated_at.toISOString(),
    updatedBy: row.updated_by,
  };
}
