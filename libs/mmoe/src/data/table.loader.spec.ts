import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { parseModelSpec } from '../model-spec/model-spec';
import { CsvFormatError } from './csv.reader';
import { RawTable } from './raw-table';
import { loadTable, loadTables, TableInputError } from './table.loader';

const run = promisify(execFile);

const SPEC = parseModelSpec({
  features: [
    { name: 'genre', type: 'categorical' },
    { name: 'price', type: 'numeric' },
  ],
  tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
  model: { expertUnits: [4] },
});

describe('loadTables', () => {
  const dir = mkdtempSync(join(tmpdir(), 'table-loader-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fills several tables row by row, leaving a row out of all when one cannot read it', async () => {
    const path = join(dir, 'small.csv');
    writeFileSync(path, 'genre,price,clicked,liked\na,1,1,0\nb,2,0,7\nc,x,1,1\nd,4,0,1\n');
    const other = parseModelSpec({ ...SPEC, tasks: [{ name: 'like', label: 'liked', type: 'binary' }] });
    const loaded = await loadTables(path, [new RawTable(SPEC), new RawTable(other)], 'skip', true);
    const [a, b] = loaded.tables;
    expect([a.size, b.size]).toEqual([2, 2]);
    expect(Array.from(a.numericColumns()[0])).toEqual([1, 4]);
    expect(Array.from(b.labelColumns()[0])).toEqual([0, 1]);
    expect(loaded).toMatchObject({ skipped: 2, malformed: 0, skippedLines: [3, 4] });
  });

  it('names a column the spec needs and the header lacks, and refuses a file without rows', async () => {
    const lacking = join(dir, 'lacking.csv');
    writeFileSync(lacking, 'genre,clicked\na,1\n');
    await expect(loadTable(lacking, SPEC, 'skip', true)).rejects.toThrow(
      new TableInputError(`${lacking}: the header lacks "price" (features[1])`),
    );
    const empty = join(dir, 'empty.csv');
    writeFileSync(empty, 'genre,price,clicked\n');
    await expect(loadTable(empty, SPEC, 'skip', true)).rejects.toThrow(`${empty}: no data rows`);
  });

  it('reads a number beyond ±1e18 as unreadable, naming line and column: a fitted variance would overflow', async () => {
    const path = join(dir, 'huge.csv');
    writeFileSync(path, 'genre,price,clicked,seconds\na,1,1,5\nb,1e300,0,5\nc,1e18,1,-1e18\nd,2,0,2e18\n');
    const watch = parseModelSpec({ ...SPEC, tasks: [{ name: 'watch', label: 'seconds', type: 'regression' }] });
    const loaded = await loadTables(path, [new RawTable(watch)], 'skip', true);
    expect(Array.from(loaded.tables[0].numericColumns()[0])).toEqual([1, 1e18]);
    expect(loaded).toMatchObject({ skipped: 2, skippedLines: [3, 5] });
    await expect(loadTable(path, watch, 'fail', true)).rejects.toThrow(
      new CsvFormatError(path, 3, 2, 'price: 1e+300 is beyond ±1e18'),
    );
  });

  it('reads a funnel step of 1 whose parent is 0 as unreadable, naming its column', async () => {
    const path = join(dir, 'funnel.csv');
    writeFileSync(path, 'genre,price,clicked,bought\na,1,1,1\nb,2,0,1\nc,3,0,\n');
    const funnel = parseModelSpec({
      ...SPEC,
      tasks: [...SPEC.tasks, { name: 'buy', label: 'bought', type: 'binary', conditionalOn: 'click' }],
    });
    const loaded = await loadTables(path, [new RawTable(funnel)], 'skip', true);
    expect(Array.from(loaded.tables[0].labelColumns()[1])).toEqual([1, 0]); // a missing step of a 0 parent is 0
    expect(loaded).toMatchObject({ skipped: 1, skippedLines: [3] });
    await expect(loadTable(path, funnel, 'fail', true)).rejects.toThrow(
      new CsvFormatError(path, 3, 4, 'bought: is 1 where clicked is 0: task buy cannot happen without click'),
    );
  });

  it('slices rows by index as views over the same columns', async () => {
    const path = join(dir, 'slice.csv');
    writeFileSync(path, 'genre,price,clicked\na,1,1\nb,2,0\na,3,1\n');
    const { table } = await loadTable(path, SPEC, 'fail', true);
    const tail = table.slice(1);
    expect(tail.size).toBe(2);
    expect(Array.from(tail.numericColumns()[0])).toEqual([2, 3]);
    expect(tail.numericColumns()[0].buffer).toBe(table.numericColumns()[0].buffer);
    const { ids, dictionary } = tail.categoricalColumns()[0];
    expect(Array.from(ids, (id) => dictionary[id])).toEqual(['b', 'a']);
  });

  it('slices sequence columns with their offsets rebased to the slice', async () => {
    const path = join(dir, 'sequence.csv');
    writeFileSync(path, 'recent,clicked\nx|y,1\nz,0\ny|z|x,1\n');
    const spec = parseModelSpec({ ...SPEC, features: [{ name: 'recent', type: 'sequence' }] });
    const { table } = await loadTable(path, spec, 'fail', true);
    const { offsets, ids, dictionary } = table.slice(1).sequenceColumns()[0];
    expect(Array.from(offsets)).toEqual([0, 1, 4]);
    expect(Array.from(ids, (id) => dictionary[id])).toEqual(['z', 'y', 'z', 'x']);
  });

  it('streams a file of a million rows into typed columns: the heap keeps no row objects', async () => {
    const rows = 1_000_000;
    const path = join(dir, 'million.csv');
    const out = createWriteStream(path);
    out.write('genre,price,clicked,note\n');
    for (let start = 0; start < rows; start += 10_000) {
      let chunk = '';
      for (let i = start; i < start + 10_000; i++) {
        chunk += `genre-number-${i % 50},${(i * 0.37).toFixed(4)},${i % 3 === 0 ? 1 : 0},a column no spec reads\n`;
      }
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');

    // Measured in a process of its own: a clean heap, and the loader at its own speed (Jest's module sandbox slows
    // csv-parse several times over).
    const root = join(__dirname, '../../../..');
    const { stdout } = await run(
      process.execPath,
      [
        '--expose-gc',
        '-r',
        join(root, 'test/fixtures/swc.register.js'),
        join(root, 'test/fixtures/table-load.probe.ts'),
        path,
        JSON.stringify(SPEC),
      ],
      { cwd: root, maxBuffer: 1 << 20 },
    );
    const measured = JSON.parse(stdout) as Record<
      'rows' | 'categories' | 'keptHeap' | 'keptArrayBuffers' | 'peakHeap',
      number
    >;

    expect(measured).toMatchObject({ rows, categories: 50 });
    // A million rows as objects would hold well over 100 MB of heap (each an object and three strings); the table
    // keeps its values in typed arrays outside the heap, 20 bytes a row, at most doubled by growth.
    const MB = 2 ** 20;
    const columnBytes = rows * (8 + 4 + 8);
    expect(measured.keptHeap / MB).toBeLessThan(8);
    expect(measured.keptArrayBuffers).toBeLessThanOrEqual(2 * columnBytes + 4 * MB);
    // While streaming, the heap holds a chunk's rows at a time, not the file.
    expect(measured.peakHeap / MB).toBeLessThan(64);
  }, 120_000);
});
