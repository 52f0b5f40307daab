import { ModelSpec } from '../model-spec/model-spec.schema';
import { BadRowPolicy, CsvFormatError, CsvReader } from './csv.reader';
import { RawTable, RawTableOptions, RowError } from './raw-table';

/** The file cannot be read as the spec needs it at all: no data rows, or a column the spec names is not in the header. */
export class TableInputError extends Error {
  override readonly name = 'TableInputError';
}

export interface LoadedTables {
  tables: RawTable[];
  /** Rows left out, malformed CSV and unreadable values together. */
  skipped: number;
  /** Of which malformed CSV (a broken quote, a wrong field count). */
  malformed: number;
  /** The first 100 lines left out, in file order. */
  skippedLines: readonly number[];
}

export interface LoadedTable extends Omit<LoadedTables, 'tables'> {
  table: RawTable;
}

const MAX_SKIPPED_LINES = 100;

/**
 * Streams a CSV file into a RawTable (typed columns: memory grows with the values, not with row objects). Malformed
 * CSV and unreadable values (text in a numeric column, a bad label) are both bad rows: fatal with their line and
 * column under 'fail', counted and left out under 'skip'.
 */
export async function loadTable(
  path: string,
  spec: ModelSpec,
  onBadRow: BadRowPolicy,
  needLabels: boolean,
  options: RawTableOptions = {},
): Promise<LoadedTable> {
  const { tables, ...counts } = await loadTables(path, [new RawTable(spec, options)], onBadRow, needLabels);
  return { table: tables[0], ...counts };
}

/**
 * One pass over the file into several tables (e.g. one per model spec), row by row, all or none: a row that one table
 * cannot read is left out of every one, so that row i is the same record in each. The header is checked against the
 * first table's spec (and its groupBy column).
 */
export async function loadTables(
  path: string,
  tables: RawTable[],
  onBadRow: BadRowPolicy,
  needLabels: boolean,
  /** What a missing groupBy column is blamed on in the error (the CLI's flag, a job's field). */
  groupByOrigin = '--group-by',
): Promise<LoadedTables> {
  const reader = new CsvReader(path, { onBadRow });
  let unreadable = 0;
  const skippedLines: number[] = [];
  let checked = false;
  for await (const row of reader.rows()) {
    if (!checked) {
      requireColumns(path, reader.header, tables[0].spec, needLabels, tables[0].options.groupBy, groupByOrigin);
      checked = true;
    }
    let read;
    try {
      read = tables.map((table) => table.read(row.values));
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      if (onBadRow === 'fail') throw new CsvFormatError(path, row.line, reader.header.indexOf(e.field) + 1, e.message);
      unreadable++;
      if (skippedLines.length < MAX_SKIPPED_LINES) skippedLines.push(row.line);
      continue;
    }
    tables.forEach((table, i) => table.push(read[i]));
  }
  if (!checked) throw new TableInputError(`${path}: no data rows`);
  return {
    tables,
    skipped: unreadable + reader.skipped,
    malformed: reader.skipped,
    skippedLines: [...reader.skippedLines, ...skippedLines].sort((a, b) => a - b).slice(0, MAX_SKIPPED_LINES),
  };
}

/** A column the spec needs but the header lacks is a mistake in the file or the spec, not a missing value. */
export function requireColumns(
  path: string,
  header: readonly string[],
  spec: ModelSpec,
  needLabels: boolean,
  groupBy?: string,
  groupByOrigin = '--group-by',
): void {
  const have = new Set(header);
  const needed = [
    ...spec.features.map((f, i) => ({ column: f.name, by: `features[${i}]` })),
    ...(needLabels ? spec.tasks.map((t, i) => ({ column: t.label, by: `tasks[${i}].label` })) : []),
    ...(needLabels && spec.training.sampleWeight !== undefined
      ? [{ column: spec.training.sampleWeight, by: 'training.sampleWeight' }]
      : []),
    ...(groupBy === undefined ? [] : [{ column: groupBy, by: groupByOrigin }]),
  ];
  const missing = needed.filter((n) => !have.has(n.column));
  if (missing.length > 0) {
    throw new TableInputError(`${path}: the header lacks ${missing.map((m) => `"${m.column}" (${m.by})`).join(', ')}`);
  }
}
