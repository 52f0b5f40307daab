import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** What each retraining cadence holds. */
interface CadenceSettings {
  cron: string;
  paused: boolean;
  /** Set on each canary the cadence's runs produce (a RolloutPolicy of libs/registry); null: none. */
  rolloutPolicy: Record<string, unknown> | null;
  /** ISO timestamp. */
  updatedAt: string;
  /** 'config' for the seed, else the admin actor. */
  updatedBy: string;
}

/** The full retrain: a fresh model on the last `windowDays` days of events. */
export interface RetrainSchedule extends CadenceSettings {
  windowDays: number;
}

/** The incremental warm start from production on the events since its data ended, plus a `replay` share of older ones. */
export interface IncrementalSchedule extends CadenceSettings {
  replay: number;
  epochs: number;
}

export interface RetrainCadences {
  full: RetrainSchedule;
  incremental: IncrementalSchedule;
}
export type RetrainCadence = keyof RetrainCadences;

type Row = Record<string, unknown> & { updated_at: Date };

/** Each cadence's one-row table and its own columns (beside cron, paused, rollout_policy, updated_at, updated_by). */
const TABLES: { [C in RetrainCadence]: { table: string; own: Record<string, keyof RetrainCadences[C]> } } = {
  full: { table: 'training_schedule', own: { window_days: 'windowDays' } },
  incremental: { table: 'incremental_schedule', own: { replay: 'replay', epochs: 'epochs' } },
};
const SHARED: Record<string, keyof CadenceSettings> = {
  cron: 'cron',
  paused: 'paused',
  rollout_policy: 'rolloutPolicy',
  updated_at: 'updatedAt',
  updated_by: 'updatedBy',
};

/**
 * The retraining cadences in Postgres (one row each), where they outlive Redis's data; the Bull repeatable jobs that
 * carry them out are RepeatableJobRunner's. Changes are serialised by the runner's lock of each job, not here.
 */
@Injectable()
export class TrainingScheduleRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async read<C extends RetrainCadence>(cadence: C): Promise<RetrainCadences[C] | null> {
    const { table, columns } = layout(cadence);
    const [row] = (await this.dataSource.query(`SELECT ${columns.join(', ')} FROM ${table}`)) as Row[];
    return row ? fromRow(cadence, row) : null;
  }

  /** Stores `schedule` unless one is stored already (the first process's seed wins), and returns the stored one. */
  async seed<C extends RetrainCadence>(cadence: C, schedule: RetrainCadences[C]): Promise<RetrainCadences[C]> {
    const stored = await this.read(cadence);
    if (stored) return stored;
    const { table, columns } = layout(cadence);
    const places = columns.map((_, i) => `$${i + 1}`).join(', ');
    await this.dataSource.query(
      `INSERT INTO ${table} (id, ${columns.join(', ')}) VALUES (1, ${places}) ON CONFLICT (id) DO NOTHING`,
      values(cadence, schedule),
    );
    return (await this.read(cadence))!;
  }

  async write<C extends RetrainCadence>(cadence: C, schedule: RetrainCadences[C]): Promise<void> {
    const { table, columns } = layout(cadence);
    const places = columns.map((_, i) => `$${i + 1}`).join(', ');
    await this.dataSource.query(
      `UPDATE ${table} SET (${columns.join(', ')}) = (${places}) WHERE id = 1`,
      values(cadence, schedule),
    );
  }
}

/** Table and column names are written here, never input. */
function layout(cadence: RetrainCadence): { table: string; columns: string[]; fields: string[] } {
  const { table, own } = TABLES[cadence];
  const all: Record<string, string> = { ...SHARED, ...(own as Record<string, string>) };
  return { table, columns: Object.keys(all), fields: Object.values(all) };
}

function values(cadence: RetrainCadence, schedule: RetrainCadences[RetrainCadence]): unknown[] {
  return layout(cadence).fields.map((field) => {
    const value = (schedule as unknown as Record<string, unknown>)[field];
    // jsonb travels as JSON text (node-postgres would send a plain object as a Postgres record).
    return field === 'rolloutPolicy' ? (value === null ? null : JSON.stringify(value)) : value;
  });
}

function fromRow<C extends RetrainCadence>(cadence: C, row: Row): RetrainCadences[C] {
  const { columns, fields } = layout(cadence);
  const schedule = Object.fromEntries(columns.map((column, i) => [fields[i], row[column]])) as Record<string, unknown>;
  schedule.updatedAt = row.updated_at.toISOString();
  schedule.rolloutPolicy ??= null;
  return schedule as unknown as RetrainCadences[C];
}
