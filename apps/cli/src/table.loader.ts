import { BadRowPolicy, CsvFormatError, CsvReader, ModelSpec, RawTable, RawTableOptions, RowError } from '@app/mmoe';

export interface LoadedTable {
  table: RawTable;
  skipped: number;
  skippedLines: readonly number[];
}

/**
 * Reads a CSV file into a RawTable. Malformed CSV and unreadable values (text in a numeric column, a bad label) are
 * both bad rows: fatal with their line and column under 'fail', counted and left out under 'skip'.
 */
export async function loadTable(
  path: string,
  spec: ModelSpec,
  onBadRow: BadRowPolicy,
  needLabels: boolean,
  options: RawTableOptions = {},
): Promise<LoadedTable> {
  const reader = new CsvReader(path, { onBadRow });
  const table = new RawTable(spec, options);
  let skipped = 0;
  const skippedLines: number[] = [];
  let checked = false;
  for await (const row of reader.rows()) {
    if (!checked) {
      requireColumns(path, reader.header, spec, needLabels, options.groupBy);
      checked = true;
    }
    try {
      table.add(row.values);
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      if (onBadRow === 'fail') throw new CsvFormatError(path, row.line, reader.header.indexOf(e.field) + 1, e.message);
      skipped++;
      if (skippedLines.length < 100) skippedLines.push(row.line);
    }
  }
  if (!checked) throw new Error(`${path}: no data rows`);
  return {
    table,
    skipped: skipped + reader.skipped,
    skippedLines: [...reader.skippedLines, ...skippedLines].sort((a, b) => a - b).slice(0, 100),
  };
}

/** A column the spec needs but the header lacks is a mistake in the file or the spec, not a missing value. */
export function requireColumns(
  path: string,
  header: readonly string[],
  spec: ModelSpec,
  needLabels: boolean,
  groupBy?: string,
): void {
  const have = new Set(header);
  const needed = [
    ...spec.features.map((f, i) => ({ column: f.name, by: `features[${i}]` })),
    ...(needLabels ? spec.tasks.map((t, i) => ({ column: t.label, by: `tasks[${i}].label` })) : []),
    ...(groupBy === undefined ? [] : [{ column: groupBy, by: '--group-by' }]),
  ];
  const missing = needed.filter((n) => !have.has(n.column));
  if (missing.length > 0) {
    throw new Error(`${path}: the header lacks ${missing.map((m) => `"${m.column}" (${m.by})`).join(', ')}`);
  }
}
