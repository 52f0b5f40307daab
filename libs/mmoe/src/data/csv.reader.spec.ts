import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CsvFormatError, CsvReader, CsvReadOptions, CsvRow } from './csv.reader';
import { writeCsv } from './csv.writer';

describe('CsvReader', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'csv-reader-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let fileCount = 0;
  function file(content: string | Buffer): string {
    const path = join(dir, `f${++fileCount}.csv`);
    writeFileSync(path, content);
    return path;
  }

  async function readAll(reader: CsvReader): Promise<CsvRow[]> {
    const rows: CsvRow[] = [];
    for await (const row of reader.rows()) rows.push(row);
    return rows;
  }

  async function read(content: string | Buffer, options?: CsvReadOptions): Promise<CsvRow[]> {
    return readAll(new CsvReader(file(content), options));
  }

  async function formatError(content: string, options?: CsvReadOptions): Promise<CsvFormatError> {
    const error = await read(content, options).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(CsvFormatError);
    return error as CsvFormatError;
  }

  it('reads the header and quoted fields with delimiters, escaped quotes and line breaks', async () => {
    const reader = new CsvReader(file('id,text,n\n1,"a, b",2\n2,"say ""hi""",3\n3,"two\nlines",4\n4,plain,5\n'));
    const rows = await readAll(reader);
    expect(reader.header).toEqual(['id', 'text', 'n']);
    expect(rows).toEqual([
      { line: 2, values: { id: '1', text: 'a, b', n: '2' } },
      { line: 3, values: { id: '2', text: 'say "hi"', n: '3' } },
      { line: 4, values: { id: '3', text: 'two\nlines', n: '4' } },
      { line: 6, values: { id: '4', text: 'plain', n: '5' } },
    ]);
  });

  it('strips a UTF-8 BOM from the first header name', async () => {
    const reader = new CsvReader(file(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\n1,2\n')])));
    expect(await readAll(reader)).toEqual([{ line: 2, values: { a: '1', b: '2' } }]);
    expect(reader.header).toEqual(['a', 'b']);
  });

  it('reads CRLF line ends, also inside quoted fields (as LF), and a last line without a line end', async () => {
    expect(await read('a,b\r\n1,"x\r\ny"\r\n\r\n2,3\r\n4,5')).toEqual([
      { line: 2, values: { a: '1', b: 'x\ny' } },
      { line: 5, values: { a: '2', b: '3' } },
      { line: 6, values: { a: '4', b: '5' } },
    ]);
  });

  it('keeps a CRLF split across read chunks whole', async () => {
    // fs streams read 64 KiB chunks: put the CR of a line end at the last byte of the first chunk.
    const padding = 'x'.repeat(65536 - 'a,b\r\n1,'.length - 1);
    const rows = await read(`a,b\r\n1,${padding}\r\n2,"p\r\nq"\r\n`);
    expect(rows.map((r) => r.line)).toEqual([2, 3]);
    expect(rows[0].values.b).toBe(padding);
    expect(rows[1].values.b).toBe('p\nq');
  });

  it('reads empty fields as undefined and skips blank lines', async () => {
    expect(await read('a,b,c\n,"",x\n\n\ny,,\n')).toEqual([
      { line: 2, values: { a: undefined, b: undefined, c: 'x' } },
      { line: 5, values: { a: 'y', b: undefined, c: undefined } },
    ]);
  });

  it('reads another delimiter', async () => {
    expect(await read('a;b\n"1;2";3\n', { delimiter: ';' })).toEqual([{ line: 2, values: { a: '1;2', b: '3' } }]);
  });

  it('reports a row with the wrong number of fields with its line', async () => {
    const error = await formatError('a,b,c\n1,2,3\n4,5\n6,7,8\n');
    expect(error).toMatchObject({
      line: 3,
      column: undefined,
      message: expect.stringMatching(/f\d+\.csv:3: expected 3 fields, got 2$/),
    });
  });

  it('reports the start line of a bad row after multi-line quoted fields', async () => {
    expect((await formatError('a,b\n1,"x\ny\nz"\n2,3\n4\n')).line).toBe(6);
    expect((await formatError('a,b\r\n1,"x\r\ny\r\nz"\r\n2,3\r\n4\r\n')).line).toBe(6);
    // The bad row itself spans lines 3-4.
    expect((await formatError('a,b\n1,2\n"x\ny",3,4\n5,6\n')).line).toBe(3);
  });

  it('reports an unclosed quote with the line and column where the record starts', async () => {
    const error = await formatError('a,b,c\n1,2,3\n4,5,"six\n7,8,9\n');
    expect(error).toMatchObject({ line: 3, column: 3 });
    expect(error.message).toMatch(/:3, column 3: unclosed quote$/);
  });

  it('reports stray quotes', async () => {
    expect(await formatError('a,b\n1,2\n3,x"y\n')).toMatchObject({
      line: 3,
      column: 2,
      reason: 'quote inside an unquoted field',
    });
    expect(await formatError('a,b\n"1\n2",3\n"4"x,5\n')).toMatchObject({
      line: 4,
      column: 1,
      reason: 'closing quote not followed by a delimiter or line end',
    });
    expect(await formatError('a,"b"c\n1,2\n', { onBadRow: 'skip' })).toMatchObject({ line: 1, column: 2 });
  });

  it('skips malformed rows when asked, counting them and keeping their lines', async () => {
    const reader = new CsvReader(file('a,b\n1,2\n3\n"multi\nline",4\n5,6,7\n8,x"y\n9,10\n"p"q,11\n"r",12\n13,14\n'), {
      onBadRow: 'skip',
    });
    const rows = await readAll(reader);
    expect(rows).toEqual([
      { line: 2, values: { a: '1', b: '2' } },
      { line: 4, values: { a: 'multi\nline', b: '4' } },
      { line: 8, values: { a: '9', b: '10' } },
      { line: 10, values: { a: 'r', b: '12' } },
      { line: 11, values: { a: '13', b: '14' } },
    ]);
    expect(reader.skipped).toBe(4);
    expect(reader.skippedLines).toEqual([3, 6, 7, 9]);
  });

  it('skips an unclosed quote, which runs to the end of the file, counting the rows it swallowed', async () => {
    const reader = new CsvReader(file('a,b\n1,2\n3,"x\n4,5\n6,7\n'), { onBadRow: 'skip' });
    expect(await readAll(reader)).toEqual([{ line: 2, values: { a: '1', b: '2' } }]);
    expect(reader.skipped).toBe(3);
    expect(reader.skippedLines).toEqual([3]);
  });

  it('fails at bytes that are not UTF-8, naming their line, whatever the bad-row policy; reads UTF-8 cut across chunks', async () => {
    const path = join(dir, 'latin1.csv');
    writeFileSync(path, Buffer.concat([Buffer.from('a,b\n1,caf'), Buffer.from([0xe9]), Buffer.from(',2\n')]));
    for (const onBadRow of ['fail', 'skip'] as const)
      await expect(readAll(new CsvReader(path, { onBadRow }))).rejects.toThrow(
        new CsvFormatError(path, 2, undefined, 'not valid UTF-8 (byte 10 of the file)'),
      );
    // Lines ended by CR alone, or by CRLF cut across a chunk's end, are counted as the reader counts them.
    const oldMac = join(dir, 'cr.csv');
    writeFileSync(oldMac, Buffer.concat([Buffer.from('a,b\r1,2\r3,caf'), Buffer.from([0xe9]), Buffer.from('\r')]));
    await expect(readAll(new CsvReader(oldMac))).rejects.toThrow(
      new CsvFormatError(oldMac, 3, undefined, 'not valid UTF-8 (byte 14 of the file)'),
    );
    const cut = join(dir, 'crlf-cut.csv');
    const head = 'a,b\r\n'.padEnd(65_535, ' ');
    writeFileSync(
      cut,
      Buffer.concat([Buffer.from(`${head}\r\n1,2\r\n3,caf`), Buffer.from([0xe9]), Buffer.from('\r\n')]),
    );
    await expect(readAll(new CsvReader(cut))).rejects.toThrow(
      new CsvFormatError(cut, 4, undefined, `not valid UTF-8 (byte ${65_535 + 13} of the file)`),
    );
    // Characters of 2, 3 and 4 bytes across every chunk boundary of a 64 KiB stream: nothing to refuse.
    const long = join(dir, 'utf8.csv');
    const value = 'é日😀'.repeat(20_000);
    writeFileSync(long, `a,b\n${value},1\n`);
    expect(await readAll(new CsvReader(long))).toEqual([{ line: 2, values: { a: value, b: '1' } }]);
  });

  it('reads UTF-16 of either byte order after its mark, with the lines, quoting and errors of the same UTF-8', async () => {
    const utf16 = (name: string, text: string, order: 'le' | 'be') => {
      const path = join(dir, name);
      const le = Buffer.from(`\ufeff${text}`, 'utf16le');
      writeFileSync(path, order === 'le' ? le : le.swap16());
      return path;
    };
    for (const order of ['le', 'be'] as const) {
      const text = 'a,b\r\n1,"two\nlines"\r\n\r\n3,4\r\n';
      expect(await readAll(new CsvReader(utf16(`ok-${order}.csv`, text, order)))).toEqual([
        { line: 2, values: { a: '1', b: 'two\nlines' } },
        { line: 5, values: { a: '3', b: '4' } },
      ]);
      const skipping = new CsvReader(utf16(`bad-${order}.csv`, 'a,b\n1,2\n3\n4,x"y\n5,6\n', order), {
        onBadRow: 'skip',
      });
      expect(await readAll(skipping)).toEqual([
        { line: 2, values: { a: '1', b: '2' } },
        { line: 5, values: { a: '5', b: '6' } },
      ]);
      expect(skipping.skippedLines).toEqual([3, 4]);
      // A lone surrogate (a high one, then an 'x'), on line 3.
      const lone = utf16(`lone-${order}.csv`, 'a,b\n1,2\n3,\ud800x\n', order);
      await expect(readAll(new CsvReader(lone))).rejects.toThrow(
        new CsvFormatError(lone, 3, undefined, 'not valid UTF-16 (byte 23 of the file)'),
      );
    }
    // Surrogate pairs across every chunk boundary of a 64 KiB stream.
    const value = 'é日😀'.repeat(20_000);
    expect(await readAll(new CsvReader(utf16('pairs.csv', `a,b\n${value},1\n`, 'le')))).toEqual([
      { line: 2, values: { a: value, b: '1' } },
    ]);
  });

  it('counts the rows a stray quote swallows up to the next quote', async () => {
    const reader = new CsvReader(file('a,b\n1,2\n3,"x\n4,5\n6,7\n8,"y"\n9,10'), { onBadRow: 'skip' });
    expect(await readAll(reader)).toEqual([
      { line: 2, values: { a: '1', b: '2' } },
      { line: 7, values: { a: '9', b: '10' } },
    ]);
    expect(reader.skipped).toBe(4);
    expect(reader.skippedLines).toEqual([3]);
  });

  it('fails on a record too long to hold, even when skipping bad rows', async () => {
    const error = await formatError(`a,b\n1,"oops\n${'2,3\n'.repeat(100)}`, { onBadRow: 'skip', maxRecordChars: 50 });
    expect(error).toMatchObject({ line: 2, column: 2, reason: 'record longer than 50 characters (unclosed quote?)' });
  });

  it('keeps only the first 100 skipped lines but counts them all', async () => {
    const bad = Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? 'x\n' : 'x"y,1\n')).join('');
    const reader = new CsvReader(file(`a,b\n${bad}1,2\n`), { onBadRow: 'skip' });
    expect(await readAll(reader)).toEqual([{ line: 152, values: { a: '1', b: '2' } }]);
    expect(reader.skipped).toBe(150);
    expect(reader.skippedLines).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
  });

  it('fails on a broken header even when skipping bad rows', async () => {
    const error = await formatError('a,"b\n1,2\n', { onBadRow: 'skip' });
    expect(error).toMatchObject({ line: 1, reason: 'unclosed quote' });
  });

  it('reads past columns without a name (a pandas index), and rejects duplicate names', async () => {
    expect(await readAll(new CsvReader(file(',a, ,c\n0,1,2,3\n')))).toEqual([{ line: 2, values: { a: '1', c: '3' } }]);
    expect(await formatError('a,b,a\n1,2,3\n')).toMatchObject({
      line: 1,
      column: 3,
      reason: 'duplicate column name "a" (also column 1)',
    });
  });

  it('rejects an empty file', async () => {
    expect((await formatError('')).message).toMatch(/empty file, expected a header row/);
    expect((await formatError('\ufeff\n\n')).message).toMatch(/empty file/);
  });

  it('reads a header without rows', async () => {
    const reader = new CsvReader(file('a,b\n'));
    expect(await readAll(reader)).toEqual([]);
    expect(reader.header).toEqual(['a', 'b']);
  });

  it('names the path of a missing file', async () => {
    const path = join(dir, 'missing.csv');
    await expect(readAll(new CsvReader(path))).rejects.toThrow(`CSV file not found: ${path}`);
  });

  it('rejects a delimiter that cannot work', () => {
    expect(() => new CsvReader('x.csv', { delimiter: '"' })).toThrow(/delimiter/);
    expect(() => new CsvReader('x.csv', { delimiter: ', ' })).toThrow(/delimiter/);
  });

  it('stops reading when the consumer stops', async () => {
    const reader = new CsvReader(file('a\n1\n2\n3\n'));
    const seen: string[] = [];
    for await (const row of reader.rows()) {
      seen.push(row.values.a!);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['1', '2']);
    // A new pass starts from the top.
    expect((await readAll(reader)).length).toBe(3);
  });

  it('streams a 200k-row file with multi-line fields, keeping every line number', async () => {
    const n = 200_000;
    const parts = ['id,text,value\r\n'];
    const expectedLines: number[] = [];
    let line = 2;
    for (let i = 0; i < n; i++) {
      expectedLines.push(line);
      if (i % 997 === 0) {
        parts.push(`${i},"long\r\ntext, ""quoted""",${i * 0.5}\r\n`);
        line += 2;
      } else {
        parts.push(`${i},t${i % 13},${i * 0.5}\r\n`);
        line += 1;
      }
    }
    const reader = new CsvReader(file(parts.join('')));
    let count = 0;
    let linesMatch = true;
    let last: CsvRow | undefined;
    for await (const row of reader.rows()) {
      if (row.line !== expectedLines[count]) linesMatch = false;
      count++;
      last = row;
    }
    expect(count).toBe(n);
    expect(linesMatch).toBe(true);
    expect(last).toEqual({
      line: expectedLines[n - 1],
      values: { id: String(n - 1), text: `t${(n - 1) % 13}`, value: String((n - 1) * 0.5) },
    });
  });
});

describe('writeCsv', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'csv-writer-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips through CsvReader, quoting what needs it', async () => {
    const path = join(dir, 'out.csv');
    async function* rows(): AsyncGenerator<(string | number | undefined)[]> {
      yield ['plain', 1.5, undefined];
      yield ['a, b', -2, 'say "hi"'];
      yield ['two\nlines', 0, 'cr\rlf'];
    }
    await writeCsv(path, ['text', 'num', 'note'], rows());
    const reader = new CsvReader(path);
    const read: CsvRow[] = [];
    for await (const row of reader.rows()) read.push(row);
    expect(reader.header).toEqual(['text', 'num', 'note']);
    expect(read).toEqual([
      { line: 2, values: { text: 'plain', num: '1.5', note: undefined } },
      { line: 3, values: { text: 'a, b', num: '-2', note: 'say "hi"' } },
      { line: 4, values: { text: 'two\nlines', num: '0', note: 'cr\rlf' } },
    ]);
  });

  it('keeps a single empty column from becoming a blank line', async () => {
    const path = join(dir, 'single.csv');
    await writeCsv(path, ['only'], [['x'], [undefined], ['y']]);
    const values: (string | undefined)[] = [];
    for await (const row of new CsvReader(path).rows()) values.push(row.values.only);
    expect(values).toEqual(['x', undefined, 'y']);
  });

  it('rejects a row whose length differs from the header', async () => {
    await expect(writeCsv(join(dir, 'bad.csv'), ['a', 'b'], [['1']])).rejects.toThrow(
      'row 1 has 1 fields, the header has 2',
    );
  });
});
