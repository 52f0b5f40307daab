import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { pipeline, Transform, TransformCallback } from 'node:stream';
import { CsvError, parse } from 'csv-parse';

import { byteOrderMark, invalidUtf8At, loneSurrogateAt } from '../util/utf8';

export type BadRowPolicy = 'fail' | 'skip';

export interface CsvReadOptions {
  /** What to do with a malformed row: stop with a CsvFormatError (default) or count it and go on. */
  onBadRow?: BadRowPolicy;
  /** One character; defaults to ','. */
  delimiter?: string;
  /**
   * Longest record accepted, in characters (default 16 Mi). Bounds memory when a stray quote would otherwise swallow
   * the rest of a large file into one field.
   */
  maxRecordChars?: number;
}

export interface CsvRow {
  /** 1-based physical line where the record starts in the file (a line ends at LF, CRLF or a lone CR). */
  line: number;
  /** Values by header name; an empty field (`,,` or `,"",`) is `undefined`, i.e. a missing value. */
  values: Record<string, string | undefined>;
}

/** A malformed CSV file or row, located by file, line and (when known) 1-based column (field) number. */
export class CsvFormatError extends Error {
  override readonly name = 'CsvFormatError';

  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}:${line}${column === undefined ? '' : `, column ${column}`}: ${reason}`);
  }
}

const MAX_SKIPPED_LINES = 100;
const CR = 0x0d;
const LF = 0x0a;

/** What csv-parse emits with `raw` on: the fields and the text they came from. */
interface RawRecord {
  record: string[];
  raw: string;
}

/** csv-parse copies its parser state onto errors, but types them only as an index signature. */
interface CsvErrorState {
  /** Line of the last character read. */
  lines: number;
  /** The record read so far. */
  raw: string;
  /** Fields completed in the record. */
  index: number;
  /** Records emitted so far. */
  records: number;
}

/** That state, checked: the reader runs csv-parse with `raw` on, so every field is there. */
function csvErrorState(err: CsvError): CsvErrorState {
  const { lines, raw, index, records } = err;
  if (typeof lines === 'number' && typeof raw === 'string' && typeof index === 'number' && typeof records === 'number')
    return { lines, raw, index, records };
  throw new Error(`csv-parse reported ${err.code} without its parser state`, { cause: err });
}

/**
 * Streams an RFC 4180 CSV file (header row required, UTF-8 with optional BOM, LF or CRLF line ends, quoted fields
 * may hold delimiters, `""` and line breaks) as rows keyed by header name, without loading the file into memory.
 * Blank lines are ignored. CRLF inside a quoted field is read as LF. Empty fields are `undefined` (missing values).
 *
 * Each call to rows() is a fresh pass over the file (e.g. one per epoch); header, skipped and skippedLines describe
 * the latest pass and are complete once it ends. Run one pass at a time.
 */
export class CsvReader {
  private readonly policy: BadRowPolicy;
  private readonly delimiter: string;
  private readonly maxRecordChars: number;
  private columns: string[] | undefined;
  private skippedRows = 0;
  private readonly firstSkippedLines: number[] = [];

  constructor(
    readonly path: string,
    options: CsvReadOptions = {},
  ) {
    this.policy = options.onBadRow ?? 'fail';
    this.delimiter = options.delimiter ?? ',';
    this.maxRecordChars = options.maxRecordChars ?? 16 * 1024 * 1024;
    if (this.delimiter.length !== 1 || '"\r\n'.includes(this.delimiter)) {
      throw new Error(
        `CSV delimiter must be one character other than a quote or line break, got ${JSON.stringify(this.delimiter)}`,
      );
    }
  }

  /** Column names from the header row; available once rows() has yielded its first row (or finished). */
  get header(): readonly string[] {
    if (this.columns === undefined) throw new Error(`${this.path}: the header has not been read yet`);
    return this.columns;
  }

  /** Malformed rows skipped under onBadRow 'skip'. */
  get skipped(): number {
    return this.skippedRows;
  }

  /** Start lines of the first skipped rows (at most 100), ascending. */
  get skippedLines(): readonly number[] {
    return this.firstSkippedLines;
  }

  async *rows(): AsyncGenerator<CsvRow, void, undefined> {
    this.columns = undefined;
    this.skippedRows = 0;
    this.firstSkippedLines.length = 0;
    const skip = this.policy === 'skip';
    const parser = parse({
      bom: true,
      delimiter: this.delimiter,
      // Line numbers are counted from the raw text, which is much cheaper than csv-parse's per-record `info`.
      raw: true,
      max_record_size: this.maxRecordChars,
      // Field counts and quoting are checked here instead, so that csv-parse never drops a record (which would
      // throw the line count off) and a bad quote spoils one line rather than running on to the next quote.
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      // All that csv-parse still reports is an unclosed quote, which runs to the end of the file, or an oversized record.
      skip_records_with_error: skip,
      on_skip: skip
        ? (err) => {
            this.onParserSkip(err);
          }
        : undefined,
    });
    // Errors from any stage reach the loop below through the parser's iterator.
    pipeline(createReadStream(this.path), new Utf8Text(this.path), new CrlfToLf(), parser, () => undefined);
    let nextLine = 1;
    try {
      for await (const { record, raw } of parser as AsyncIterable<RawRecord>) {
        // `raw` runs from the end of the previous record, so it starts with the blank lines skipped before this one.
        const line = nextLine + leadingLineBreaks(raw);
        nextLine += lineBreaks(raw);
        const quoting = raw.includes('"') ? quotingError(raw, this.delimiter) : undefined;
        if (this.columns === undefined) {
          if (quoting) throw new CsvFormatError(this.path, line, quoting.column, quoting.reason);
          this.columns = checkedHeader(this.path, line, record);
          continue;
        }
        const error = quoting
          ? new CsvFormatError(this.path, line, quoting.column, quoting.reason)
          : record.length !== this.columns.length
            ? new CsvFormatError(
                this.path,
                line,
                undefined,
                `expected ${this.columns.length} fields, got ${record.length}`,
              )
            : undefined;
        if (error) {
          if (!skip) throw error;
          this.noteSkip(line, linesSpanned(raw));
          continue;
        }
        yield { line, values: toValues(this.columns, record) };
      }
    } catch (err) {
      throw this.explain(err);
    }
    if (this.columns === undefined)
      throw new CsvFormatError(this.path, 1, undefined, 'empty file, expected a header row');
  }

  private onParserSkip(err: CsvError | undefined): void {
    if (err === undefined) return;
    const error = this.formatError(err);
    // Throwing turns the skip into a failure. Without a header there is no schema to read rows by, and csv-parse does
    // not recover from the other errors.
    const { records, raw } = csvErrorState(err);
    if (records === 0 || err.code !== 'CSV_QUOTE_NOT_CLOSED') throw error;
    this.noteSkip(error.line, linesSpanned(raw));
  }

  /**
   * A bad record counts as the lines it took: a stray quote swallows every row up to the next quote (or the end of
   * the file), and they are as lost as it is.
   */
  private noteSkip(line: number, spanned: number): void {
    this.skippedRows += spanned;
    // The parser reports its skip ahead of the rows being consumed, so keep the lowest lines rather than the first reported.
    const lines = this.firstSkippedLines;
    const at = lines.findIndex((l) => l > line);
    if (at === -1) {
      if (lines.length < MAX_SKIPPED_LINES) lines.push(line);
      return;
    }
    lines.splice(at, 0, line);
    if (lines.length > MAX_SKIPPED_LINES) lines.pop();
  }

  private explain(err: unknown): Error {
    if (err instanceof CsvFormatError) return err;
    if (err instanceof CsvError) return this.formatError(err);
    // Duck-typed: errors from Node's fs may come from another realm (e.g. under Jest), failing instanceof Error.
    const { code, message } = (err ?? {}) as Partial<NodeJS.ErrnoException>;
    if (code === 'ENOENT') return new Error(`CSV file not found: ${this.path}`, { cause: err });
    return new Error(`cannot read CSV file ${this.path}: ${message ?? String(err)}`, { cause: err });
  }

  private formatError(err: CsvError): CsvFormatError {
    const { lines, raw, index } = csvErrorState(err);
    const reason =
      err.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'unclosed quote'
        : err.code === 'CSV_MAX_RECORD_SIZE'
          ? `record longer than ${this.maxRecordChars} characters (unclosed quote?)`
          : err.message;
    return new CsvFormatError(this.path, recordStartLine(lines, raw), index + 1, reason);
  }
}

/**
 * The header's names, each once. A column without a name (pandas writes its index so) is no error: no spec can name
 * it, so it is never read, as any column no spec names.
 */
function checkedHeader(file: string, line: number, names: string[]): string[] {
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (unnamed(name)) return;
    const first = seen.get(name);
    if (first !== undefined)
      throw new CsvFormatError(file, line, i + 1, `duplicate column name "${name}" (also column ${first})`);
    seen.set(name, i + 1);
  });
  return names;
}

const unnamed = (name: string): boolean => name.trim() === '';

function toValues(header: string[], record: string[]): Record<string, string | undefined> {
  // No prototype, so that any header name (even "__proto__") is a plain key.
  const values: Record<string, string | undefined> = Object.create(null);
  for (let i = 0; i < header.length; i++)
    if (!unnamed(header[i])) values[header[i]] = record[i] === '' ? undefined : record[i];
  return values;
}

/** The lines a record's raw text covers, from its first (after the blank lines before it) to its last. */
function linesSpanned(raw: string): number {
  const ends = raw.length > 0 && isLineBreak(raw.charCodeAt(raw.length - 1));
  return Math.max(1, lineBreaks(raw) - leadingLineBreaks(raw) + (ends ? 0 : 1));
}

/**
 * Where a record that csv-parse rejected starts: it reports the line of the last character read, and `raw` holds the
 * record so far (after any skipped blank lines), so walk back over the line breaks inside it.
 */
function recordStartLine(lines: number, raw: string): number {
  // A line break read last is not yet counted in `lines`.
  const pending = raw.length > 0 && isLineBreak(raw.charCodeAt(raw.length - 1)) ? 1 : 0;
  return lines + pending - (lineBreaks(raw) - leadingLineBreaks(raw));
}

/**
 * The first field whose quoting breaks RFC 4180 (a quote inside an unquoted field, or text after a closing quote),
 * given a record's raw text; csv-parse accepts these under `relax_quotes`.
 */
function quotingError(raw: string, delimiter: string): { column: number; reason: string } | undefined {
  const end = raw.length - (isLineBreak(raw.charCodeAt(raw.length - 1)) ? 1 : 0);
  let i = leadingLineBreaks(raw);
  for (let column = 1; ; column++) {
    if (raw[i] === '"') {
      let close = raw.indexOf('"', i + 1);
      while (close !== -1 && raw[close + 1] === '"') close = raw.indexOf('"', close + 2);
      if (close === -1) return { column, reason: 'unclosed quote' };
      i = close + 1;
      if (i < end && raw[i] !== delimiter)
        return { column, reason: 'closing quote not followed by a delimiter or line end' };
    } else {
      const next = raw.indexOf(delimiter, i);
      const stop = next === -1 ? end : next;
      const quote = raw.indexOf('"', i);
      if (quote !== -1 && quote < stop) return { column, reason: 'quote inside an unquoted field' };
      i = stop;
    }
    if (i >= end) return undefined;
    i++;
  }
}

function lineBreaks(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (isLineBreak(text.charCodeAt(i))) n++;
  return n;
}

function leadingLineBreaks(text: string): number {
  let n = 0;
  while (n < text.length && isLineBreak(text.charCodeAt(n))) n++;
  return n;
}

/** After CrlfToLf every line break is a single CR or LF. */
function isLineBreak(code: number): boolean {
  return code === CR || code === LF;
}

/**
 * The file as UTF-8, checked: it fails at the first byte sequence that is not UTF-8, naming its line (read as text,
 * each would become U+FFFD, and two different bad values of a categorical feature one and the same category). A file
 * that starts with a UTF-16 byte order mark (either byte order) is transcoded to UTF-8, a lone surrogate failing the
 * same way: csv-parse's own UTF-16 mode gives no line breaks in a record's raw text, which the line numbers and the
 * quoting check read.
 */
class Utf8Text extends Transform {
  private held: Buffer = Buffer.alloc(0);
  private offset = 0;
  private line = 1;
  /** Whether the text passed so far ends in CR (a CRLF cut by a chunk's end is one line break, not two). */
  private afterCr = false;
  /** Known from the first chunk: its byte order mark. */
  private encoding: 'utf8' | 'utf16le' | 'utf16be' | undefined;

  constructor(private readonly path: string) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const input = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.encoding ??= byteOrderMark(input);
    // A character cut by the chunk's end waits for the next chunk.
    const whole =
      input.length - (this.encoding === 'utf8' ? incompleteTail(input) : incompleteUtf16Tail(input, this.encoding));
    this.held = input.subarray(whole);
    this.pass(input.subarray(0, whole), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.encoding ??= 'utf8'; // an empty file
    if (this.encoding !== 'utf8' && this.held.length > 0) return callback(this.invalid(this.held, 0));
    this.pass(this.held, callback);
  }

  private pass(bytes: Buffer, callback: TransformCallback): void {
    const text = this.encoding === 'utf8' ? this.checked(bytes) : this.transcoded(bytes);
    if (text instanceof CsvFormatError) callback(text);
    else callback(null, text);
  }

  private checked(bytes: Buffer): Buffer | CsvFormatError {
    if (!isUtf8(bytes)) return this.invalid(bytes, invalidUtf8At(bytes));
    this.offset += bytes.length;
    this.countLines(bytes);
    return bytes;
  }

  /** Whole UTF-16 code units (a surrogate pair never split, see incompleteUtf16Tail) as UTF-8. */
  private transcoded(bytes: Buffer): Buffer | CsvFormatError {
    const units = this.encoding === 'utf16be' ? Buffer.from(bytes).swap16() : bytes;
    const at = loneSurrogateAt(units);
    if (at >= 0) return this.invalid(units, at);
    const utf8 = Buffer.from(units.toString('utf16le'), 'utf8');
    this.offset += bytes.length;
    this.countLines(utf8);
    return utf8;
  }

  private countLines(text: Buffer): void {
    this.line += lineBreaksIn(text, this.afterCr);
    if (text.length > 0) this.afterCr = text[text.length - 1] === CR;
  }

  /** The error for a bad sequence at byte `at` of `bytes` (little-endian code units when the file is UTF-16). */
  private invalid(bytes: Buffer, at: number): CsvFormatError {
    const utf8 = this.encoding === 'utf8';
    const before = utf8 ? bytes.subarray(0, at) : Buffer.from(bytes.subarray(0, at).toString('utf16le'), 'utf8');
    return new CsvFormatError(
      this.path,
      this.line + lineBreaksIn(before, this.afterCr),
      undefined,
      `not valid ${utf8 ? 'UTF-8' : 'UTF-16'} (byte ${this.offset + at + 1} of the file)`,
    );
  }
}

/** Bytes at the end of UTF-16 `bytes` to hold for the next chunk: an odd byte, or a high surrogate without its pair. */
function incompleteUtf16Tail(bytes: Buffer, encoding: 'utf16le' | 'utf16be'): number {
  const odd = bytes.length & 1;
  const last = bytes.length - odd - 2;
  if (last < 0) return odd;
  const unit = encoding === 'utf16le' ? bytes.readUInt16LE(last) : bytes.readUInt16BE(last);
  return unit >= 0xd800 && unit < 0xdc00 ? odd + 2 : odd;
}

/** Bytes at the end of `bytes` that begin a UTF-8 sequence it does not finish. */
function incompleteTail(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if (b < 0x80) return 0;
    if (b >= 0xc0) {
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return length > back ? back : 0;
    }
  }
  return 0;
}

/**
 * Line breaks in `bytes` (CRLF, LF or CR alone, as the reader reads them), `afterCr` when the text before them ended
 * in CR: LFs and CRs counted by indexOf, less each CR's LF.
 */
function lineBreaksIn(bytes: Buffer, afterCr: boolean): number {
  let n = afterCr && bytes[0] === LF ? -1 : 0;
  for (let i = bytes.indexOf(LF); i !== -1; i = bytes.indexOf(LF, i + 1)) n++;
  for (let i = bytes.indexOf(CR); i !== -1; i = bytes.indexOf(CR, i + 1)) if (bytes[i + 1] !== LF) n++;
  return n;
}

/**
 * Rewrites CRLF as LF, so that a line break is one character wherever it is (csv-parse counts a CRLF inside quotes
 * as two lines). A CR at the end of a chunk waits for the next byte.
 */
class CrlfToLf extends Transform {
  private heldCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const input = this.heldCr ? Buffer.concat([Buffer.of(CR), chunk]) : chunk;
    this.heldCr = input.length > 0 && input[input.length - 1] === CR;
    const end = this.heldCr ? input.length - 1 : input.length;
    const firstCr = input.indexOf(CR);
    if (firstCr === -1 || firstCr >= end) {
      callback(null, input.subarray(0, end));
      return;
    }
    const output = Buffer.allocUnsafe(end);
    input.copy(output, 0, 0, firstCr);
    let n = firstCr;
    for (let i = firstCr; i < end; i++) {
      if (input[i] === CR && input[i + 1] === LF) continue;
      output[n++] = input[i];
    }
    callback(null, output.subarray(0, n));
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.heldCr ? Buffer.of(CR) : undefined);
  }
}
