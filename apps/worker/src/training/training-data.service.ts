import { Injectable } from '@nestjs/common';

import { EventRepository } from '@app/db';
import type { ModelSpec, TaskSpec } from '@app/mmoe';
import type { CsvSource, EventsSource, TrainingDataSource } from '@app/queue';

import { CsvFileRepository } from './csv-file.repository';
import { eventRecord, orderSplitIndex, splitAt, timeSplitIndex, type SplitRecords } from './dataset.rules';
import { TrainingInputError } from './training.errors';

export interface TrainingData extends SplitRecords {
  /** Where the held-out slice starts: the time of its first event, or its first CSV row (1-based, header excluded). */
  holdoutStart: string | number | null;
  /** Malformed CSV rows left out. */
  malformed: number;
}

/** Reads a job's data source into records, split into the rows to train on and the later rows to judge the model on. */
@Injectable()
export class TrainingDataService {
  constructor(
    private readonly events: EventRepository,
    private readonly csv: CsvFileRepository,
  ) {}

  /** `tasks` name the label columns to fill from events: the candidate's, and production's to evaluate it alike. */
  load(
    source: TrainingDataSource,
    spec: ModelSpec,
    tasks: readonly TaskSpec[],
    holdoutFraction: number,
  ): Promise<TrainingData> {
    return source.kind === 'events'
      ? this.fromEvents(source, tasks, holdoutFraction)
      : this.fromCsv(source, spec, holdoutFraction);
  }

  private async fromEvents(source: EventsSource, tasks: readonly TaskSpec[], fraction: number): Promise<TrainingData> {
    const [from, to] = [instant(source.from, 'source.from'), instant(source.to, 'source.to')];
    if (from >= to)
      throw new TrainingInputError(`source.from (${source.from}) must be before source.to (${source.to})`);
    const rows = await this.events.readTrainingRows(from, to);
    const index = timeSplitIndex(
      rows.map((r) => r.occurredAt.getTime()),
      fraction,
    );
    const records = rows.map((row) => eventRecord(row, tasks));
    return { ...splitAt(records, index), holdoutStart: rows[index]?.occurredAt.toISOString() ?? null, malformed: 0 };
  }

  private async fromCsv(source: CsvSource, spec: ModelSpec, fraction: number): Promise<TrainingData> {
    const file = await this.csv.read(source.path);
    const missing = spec.features.filter((f) => !file.header.includes(f.name)).map((f) => f.name);
    if (missing.length > 0)
      throw new TrainingInputError(`${source.path}: the header lacks the feature columns ${missing.join(', ')}`);
    const index = orderSplitIndex(file.records.length, fraction);
    return {
      ...splitAt(file.records, index),
      holdoutStart: index < file.records.length ? index + 1 : null,
      malformed: file.skipped,
    };
  }
}

function instant(value: string, field: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new TrainingInputError(`${field} is not a valid ISO timestamp: "${value}"`);
  return date;
}
