import { access } from 'node:fs/promises';
import { Injectable } from '@nestjs/common';

import { CsvFormatError, loadTables, TableInputError, type LoadedTables, type RawTable } from '@app/mmoe';

import { TrainingInputError } from './training.errors';

/**
 * Training data from a CSV file on the worker's disk, streamed into tables by the loader the CLI uses (typed columns,
 * no row objects); malformed rows and unreadable values are counted and skipped.
 */
@Injectable()
export class CsvFileRepository {
  async read(path: string, tables: RawTable[]): Promise<LoadedTables> {
    await access(path).catch(() => {
      throw new TrainingInputError(`${path}: no such readable file on this worker`);
    });
    try {
      // Labels (and a sample-weight column) are required: without them the job could only fail later, or train unweighted.
      return await loadTables(path, tables, 'skip', true, 'groupBy');
    } catch (e) {
      // What 'skip' cannot skip (no header, a missing column, a broken encoding) will not read better on a retry.
      throw e instanceof CsvFormatError || e instanceof TableInputError ? new TrainingInputError(e.message) : e;
    }
  }
}
