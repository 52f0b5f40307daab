import { access } from 'node:fs/promises';
import { Injectable } from '@nestjs/common';

import { CsvFormatError, CsvReader } from '@app/mmoe';

import type { FlatRecord } from './dataset.rules';
import { TrainingInputError } from './training.errors';

export interface CsvFile {
  header: readonly string[];
  /** In file order. */
  records: FlatRecord[];
  /** Malformed rows left out. */
  skipped: number;
}

/** Training data from a CSV file on the worker's disk, read as the CLI reads it; malformed rows are counted and skipped. */
@Injectable()
export class CsvFileRepository {
  async read(path: string): Promise<CsvFile> {
    await access(path).catch(() => {
      throw new TrainingInputError(`${path}: no such readable file on this worker`);
    });
    const reader = new CsvReader(path, { onBadRow: 'skip' });
    const records: FlatRecord[] = [];
    try {
      for await (const row of reader.rows()) records.push(row.values);
    } catch (e) {
      // What 'skip' cannot skip (no header, a broken encoding) will not read better on a retry.
      throw e instanceof CsvFormatError ? new TrainingInputError(e.message) : e;
    }
    return { header: reader.header, records, skipped: reader.skipped };
  }
}
