import { createWriteStream } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** One output row; `undefined` is written as an empty field, which CsvReader reads back as a missing value. */
export type CsvCell = string | number | undefined;

/**
 * Writes a header and rows as RFC 4180 CSV (comma-separated, LF line ends) to a file, or to a stream left open (the
 * process's stdout), pulling rows only as fast as it takes them. Rejects when a row's length differs from the header's.
 */
export async function writeCsv(
  to: string | Writable,
  header: readonly string[],
  rows: AsyncIterable<readonly CsvCell[]> | Iterable<readonly CsvCell[]>,
): Promise<void> {
  async function* lines(): AsyncGenerator<string> {
    yield formatRow(header);
    let index = 0;
    for await (const row of rows) {
      index++;
      if (row.length !== header.length)
        throw new Error(`row ${index} has ${row.length} fields, the header has ${header.length}`);
      yield formatRow(row);
    }
  }
  if (typeof to === 'string') await pipeline(Readable.from(lines()), createWriteStream(to));
  else await pipeline(Readable.from(lines()), to, { end: false });
}

function formatRow(row: readonly CsvCell[]): string {
  // A lone empty field would be a blank line, which readers skip.
  if (row.length === 1 && (row[0] === undefined || row[0] === '')) return '""\n';
  return row.map(formatCell).join(',') + '\n';
}

function formatCell(cell: CsvCell): string {
  if (cell === undefined) return '';
  const text = String(cell);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
