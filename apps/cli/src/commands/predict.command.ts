import { join } from 'node:path';

import { float32Text } from '@app/common';
import {
  CsvCell,
  CsvFormatError,
  CsvReader,
  CsvRow,
  EncodedDataset,
  requireColumns,
  RowError,
  writeCsv,
} from '@app/mmoe';

import { CliContext } from '../cli.context';
import { ARTIFACT_FILE, loadModelDir } from './model.files';
import { sameFile, writeOutput } from './output.files';
import { predictionHeader } from './prediction-header.rules';

export interface PredictArgs {
  model: string;
  data: string;
  out: string;
  idColumn?: string;
}

const CHUNK = 4096;

/**
 * Streams the input in chunks and writes `line,[id,]<task>…[,<task>|<parent>…]` per row: memory stays flat however big the file, and
 * `line` (the input line) keeps rows joinable when bad ones are skipped. Scores are written as the API writes them.
 */
export async function predictCommand(args: PredictArgs, ctx: CliContext): Promise<void> {
  if (await sameFile(args.data, args.out))
    throw new Error(`--out ${args.out} is the --data file: the predictions would overwrite their input`);
  if (await sameFile(join(args.model, ARTIFACT_FILE), args.out))
    throw new Error(`--out ${args.out} is the model's artifact: the predictions would overwrite the model`);
  const model = await loadModelDir(args.model);
  const reader = new CsvReader(args.data, { onBadRow: ctx.onBadRow });
  let written = 0;
  /** Lines of the rows the model could not read (the reader's own skips are its skippedLines). */
  const unreadable: number[] = [];
  const readable = (row: CsvRow): boolean => {
    try {
      model.encoder.encodeRecords([row.values]);
      return true;
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      if (ctx.onBadRow === 'fail')
        throw new CsvFormatError(args.data, row.line, reader.header.indexOf(e.field) + 1, e.message);
      unreadable.push(row.line);
      return false;
    }
  };
  const scoreChunk = (chunk: CsvRow[]): CsvCell[][] => {
    let rows = chunk;
    let encoded: EncodedDataset;
    try {
      encoded = model.encoder.encodeRecords(rows.map((r) => r.values));
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      // Only a chunk with a bad row pays for row-by-row checks.
      rows = chunk.filter(readable);
      encoded = model.encoder.encodeRecords(rows.map((r) => r.values));
    }
    const { scores, conditional = [] } = model.predict(encoded);
    written += rows.length;
    return rows.map((row, i) => [
      row.line,
      ...(args.idColumn ? [row.values[args.idColumn]] : []),
      // The model's float32s as the API writes them (0.1, not the double's 0.10000000149011612).
      ...scores.map((s) => float32Text(s[i])),
      ...conditional.map((s) => float32Text(s[i])),
    ]);
  };
  const checkHeader = () => {
    requireColumns(args.data, reader.header, model.spec, false);
    if (args.idColumn && !reader.header.includes(args.idColumn))
      throw new Error(`${args.data}: no column "${args.idColumn}" (--id-column)`);
  };
  async function* scored(): AsyncGenerator<CsvCell[]> {
    let chunk: CsvRow[] = [];
    let checked = false;
    for await (const row of reader.rows()) {
      if (!checked) {
        checkHeader();
        checked = true;
      }
      chunk.push(row);
      if (chunk.length === CHUNK) {
        yield* scoreChunk(chunk);
        chunk = [];
      }
    }
    // A file of a header alone: no prediction, but a header that does not fit the model is still an error.
    if (!checked) checkHeader();
    if (chunk.length > 0) yield* scoreChunk(chunk);
  }
  try {
    const header = predictionHeader(model.spec.tasks, args.idColumn);
    // This process's stdout under any name (/dev/stdout, its file): written to the stream itself, which may be a
    // socket no path opens, and the summary goes beside it, to stderr, so that stdout stays CSV.
    const toStdout = await sameFile(args.out, '/dev/stdout');
    if (toStdout) await writeCsv(process.stdout, header, scored());
    else await writeOutput([{ path: args.out, write: (path) => writeCsv(path, header, scored()) }], '--out');
    const skipped = reader.skipped + unreadable.length;
    const skippedLines = [...reader.skippedLines, ...unreadable].sort((a, b) => a - b);
    ctx.reportSkipped(args.data, { skipped, skippedLines });
    ctx.print({ out: args.out, rows: written, skipped }, toStdout ? 'stderr' : 'stdout');
  } finally {
    model.dispose();
  }
}
