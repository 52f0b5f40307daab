import { createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';

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
import { ensureOutputDir, ownDescriptor, sameFile, writeOutput } from './output.files';
import { predictionHeader } from './prediction-header.rules';

export interface PredictArgs {
  model: string;
  data: string;
  out: string;
  idColumn?: string;
}

const CHUNK = 4096;
/** Lines of unreadable rows kept for the report (its first ten are printed), as CsvReader keeps its own. */
const MAX_SKIPPED_LINES = 100;

/** This process's descriptor `fd` as a stream left open: stdout and stderr as Node already holds them. */
function descriptorStream(fd: number): Writable {
  if (fd === 1) return process.stdout;
  if (fd === 2) return process.stderr;
  return createWriteStream('', { fd, autoClose: false });
}

/**
 * Streams the input in chunks and writes `line,[id,]<task>…[,<task>|<parent>…]` per row: memory stays flat however big the file, and
 * `line` (the input line) keeps rows joinable when bad ones are skipped. Scores are written as the API writes them.
 */
export async function predictCommand(args: PredictArgs, ctx: CliContext): Promise<void> {
  if (await sameFile(args.data, args.out))
    throw new Error(`--out ${args.out} is the --data file: the predictions would overwrite their input`);
  if (await sameFile(join(args.model, ARTIFACT_FILE), args.out))
    throw new Error(`--out ${args.out} is the model's artifact: the predictions would overwrite the model`);
  // As train makes its --out: a missing directory is made before the model is loaded, not reported after the scoring.
  await ensureOutputDir(dirname(args.out), '--out', args.out);
  const model = await loadModelDir(args.model);
  const reader = new CsvReader(args.data, { onBadRow: ctx.onBadRow });
  let written = 0;
  /** Lines of the rows the model could not read (the reader's own skips are its skippedLines). */
  const unreadable: number[] = [];
  let unreadableRows = 0;
  const readable = (row: CsvRow): boolean => {
    try {
      model.encoder.encodeRecords([row.values]);
      return true;
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      if (ctx.onBadRow === 'fail')
        throw new CsvFormatError(args.data, row.line, reader.header.indexOf(e.field) + 1, e.message);
      // The first lines only, as the reader keeps its own: memory stays flat however many rows are bad.
      if (unreadableRows++ < MAX_SKIPPED_LINES) unreadable.push(row.line);
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
    // A descriptor of this process by name (/dev/stdout …) is written through the descriptor itself; a file, even
    // the one stdout goes to, whole or not at all. Predictions where stdout goes keep it CSV: the summary goes to
    // stderr.
    const fd = await ownDescriptor(args.out);
    const toStdout = fd === 1 || (await sameFile(args.out, '/dev/stdout'));
    if (fd === undefined)
      await writeOutput([{ path: args.out, write: (path) => writeCsv(path, header, scored()) }], '--out');
    else await writeCsv(descriptorStream(fd), header, scored());
    const skipped = reader.skipped + unreadableRows;
    const skippedLines = [...reader.skippedLines, ...unreadable].sort((a, b) => a - b);
    ctx.reportSkipped(args.data, { skipped, skippedLines });
    ctx.print({ out: args.out, rows: written, skipped }, toStdout ? 'stderr' : 'stdout');
  } finally {
    model.dispose();
  }
}
