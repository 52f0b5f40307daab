import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** What each retraining cadence holds. */
interface CadenceSettings {
  cron: string;
  paused: boolean;
  /** Set on each canary the cadence's runs produce (a RolloutPolicy of libs/registry, which reads it); null: none. */
  rolloutPolicy: object | null;
  /** ISO timestamp. */
  updatedAt: string;
  /** 'config' for the seed, else the admin actor. */
  updatedBy: string;
}

/**
 * The full retrain: a model on the last `windowDays` days of events, fresh or warm-started from production
 * (`warmStart`), for `epochs` epochs (null: the spec's).
 */
export interface RetrainSchedule extends CadenceSettings {
  windowDays: number;
  warmStart: boolean;
  epochs: number | null;
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

/** Each cadence's one-row table, and the column of each of its fields. */
const SHARED: { [F in keyof CadenceSettings]: string } = {
  cron: 'cron',
  paused: 'paused',
  rolloutPolicy: 'rollout_policy',
  updatedAt: 'updated_at',
  updatedBy: 'updated_by',
};
const TABLES: { [C in RetrainCadence]: { table: string; columns: { [F in keyof RetrainCadences[C]]: string } } } = {
  full: {
    table: 'training_schedule',
    columns: { ...SHARED, windowDays: 'window_days', warmStart: 'warm_start', epochs: 'epochs' },
  },
  incremental: { table: 'incremental_schedule', columns: { ...SHARED, replay: 'replay', epochs: 'epochs' } },
};

/**
 * The retraining cadences in Postgres (one row each), where they outlive Redis's data; the Bull repeatable jobs that
 * carry them out are RepeatableJobRunner's. Changes are serialised by the runner's lock of each job, not here.
 */
@Injectable()
export class TrainingScheduleRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async read<C extends RetrainCadence>(cadence: C): Promise<RetrainCadences[C] | null> {
    const { table, fields, columns } = layout(cadence);
    // Each column under its field's name, the timestamp as toISOString() writes it: the row is the cadence.
    const list = fields.map((field, i) =>
      field === 'updatedAt'
        ? `to_char(${columns[i]} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "${field}"`
        : `${columns[i]} AS "${field}"`,
    );
    const [row] = (await this.dataSource.query(`SELECT ${list.join(', ')} FROM ${table}`)) as RetrainCadences[C][];
    return row ?? null;
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
function layout<C extends RetrainCadence>(
  cadence: C,
): { table: string; fields: (keyof RetrainCadences[C] & string)[]; columns: string[] } {
  const { table, columns } = TABLES[cadence];
  const fields: (keyof RetrainCadences[C] & string)[] = [];
  for (const field in columns) fields.push(field);
  return { table, fields, columns: fields.map((field) => columns[field]) };
}

function values<C extends RetrainCadence>(cadence: C, schedule: RetrainCadences[C]): unknown[] {
  const { rolloutPolicy } = schedule;
  return layout(cadence).fields.map((field) =>
    // jsonb travels as JSON text (node-postgres would send a plain object as a Postgres record).
    field === 'rolloutPolicy' ? rolloutPolicy && JSON.stringify(rolloutPolicy) : schedule[field],
  );
}
