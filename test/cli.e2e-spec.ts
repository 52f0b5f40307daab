import { execFile, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { float32Text } from '@app/common';
import { Rng } from '@app/mmoe';

const run = promisify(execFile);
const root = join(__dirname, '..');
const cliMain = join(root, 'apps/cli/src/main.ts');

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(join(root, 'node_modules/.bin/tsx'), [cliMain, ...args], {
      cwd: root,
      env: { ...process.env, MMOE_BACKEND: 'wasm' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Clicks follow the item genre, the user genre and a numeric signal; dwell time follows the signal. */
function writeData(path: string, rows: number, seed: number): void {
  const rng = new Rng(seed);
  const lines = ['user_genre,item_genre,signal,clicked,dwell'];
  for (let i = 0; i < rows; i++) {
    const u = rng.int(3);
    const it = rng.int(3);
    const signal = rng.gaussian();
    const logit = (it === 0 ? 1.5 : -1.5) + (u === 1 ? 1 : 0) + signal;
    const clicked = rng.next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
    lines.push(`"g${u}",g${it},${signal.toFixed(4)},${clicked},${(20 + 5 * signal + rng.gaussian()).toFixed(3)}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

describe('CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmoe-cli-'));
  const spec = join(dir, 'spec.json');
  const model = join(dir, 'model');
  writeFileSync(
    spec,
    JSON.stringify({
      features: [
        { name: 'user_genre', type: 'categorical', embeddingDim: 3 },
        { name: 'item_genre', type: 'categorical', embeddingDim: 3 },
        { name: 'signal', type: 'numeric' },
      ],
      tasks: [
        { name: 'click', label: 'clicked', type: 'binary' },
        { name: 'dwell', label: 'dwell', type: 'regression' },
      ],
      model: { architecture: 'mmoe', experts: 3, expertUnits: [8], towerUnits: [4] },
      training: { epochs: 8, batchSize: 64, learningRate: 0.02, seed: 2 },
    }),
  );
  writeData(join(dir, 'train.csv'), 2000, 1);
  writeData(join(dir, 'test.csv'), 500, 2);

  it('trains, evaluates and predicts', async () => {
    const train = await cli('train', '--data', join(dir, 'train.csv'), '--spec', spec, '--out', model);
    expect(train.code).toBe(0);
    expect(train.stderr).toMatch(/tfjs backend: wasm/);
    expect(train.stderr).toMatch(/epoch 1\/8/); // one line per epoch when not on a terminal
    expect(JSON.parse(train.stdout)).toMatchObject({
      out: model,
      report: join(model, 'report.html'),
      valid: { click: { auc: expect.any(Number) } },
    });
    const report = readFileSync(join(model, 'report.html'), 'utf8');
    expect(report).toContain('tfjs-backend-wasm'); // the backend that trained it
    expect(report.match(/<svg class="chart"/g)!.length).toBeGreaterThanOrEqual(4);

    const evaluation = await cli('evaluate', '--model', model, '--data', join(dir, 'test.csv'));
    expect(evaluation.code).toBe(0);
    const evaluated = JSON.parse(evaluation.stdout);
    expect(evaluated.tasks.click.auc).toBeGreaterThan(0.75);
    expect(evaluated.tasks.click.logloss).toEqual(expect.any(Number));
    expect(evaluated.tasks.dwell.rmse).toBeLessThan(3);
    expect(evaluated.tasks.dwell.mae).toEqual(expect.any(Number));
    expect(evaluated.tasks.click.gauc).toBeUndefined();

    // Grouped by the user genre: three groups, both classes in each; GAUC is below AUC, as the genre explains part of it.
    const grouped = await cli(
      'evaluate',
      '--model',
      model,
      '--data',
      join(dir, 'test.csv'),
      '--group-by',
      'user_genre',
    );
    expect(grouped.code).toBe(0);
    const byGroup = JSON.parse(grouped.stdout).tasks.click;
    expect(byGroup).toMatchObject({ gaucGroups: 3, gaucSkippedGroups: 0, auc: evaluated.tasks.click.auc });
    expect(byGroup.gauc).toBeGreaterThan(0.6);
    expect(byGroup.gauc).toBeLessThan(byGroup.auc);
    const noColumn = await cli('evaluate', '--model', model, '--data', join(dir, 'test.csv'), '--group-by', 'user');
    expect(noColumn.code).toBe(1);
    expect(noColumn.stderr).toMatch(/the header lacks "user" \(--group-by\)/);

    const out = join(dir, 'scores.csv');
    const predicted = await cli('predict', '--model', model, '--data', join(dir, 'test.csv'), '--out', out);
    expect(predicted.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('line,click,dwell');
    expect(lines).toHaveLength(501);
    const [line, click, dwell] = lines[1].split(',').map(Number);
    expect(line).toBe(2);
    expect(click).toBeGreaterThan(0);
    expect(click).toBeLessThan(1);
    expect(dwell).toBeGreaterThan(0);
    // The model's float32s, written as the API writes them: the shortest decimal that reads back as each.
    for (const cell of lines.slice(1).flatMap((l) => l.split(',').slice(1)))
      expect(cell).toBe(float32Text(Math.fround(Number(cell))));
  }, 180_000);

  it('trains an ESMM task, evaluates both its AUCs and predicts its joint and conditional probabilities', async () => {
    // A conversion is observed only after a click (empty otherwise) and follows the signal.
    const write = (path: string, rows: number, seed: number) => {
      const rng = new Rng(seed);
      const lines = ['user_genre,item_genre,signal,clicked,converted'];
      for (let i = 0; i < rows; i++) {
        const it = rng.int(3);
        const signal = rng.gaussian();
        const clicked = rng.next() < 1 / (1 + Math.exp(-((it === 0 ? 1.5 : -1.5) + signal))) ? 1 : 0;
        const converted = clicked ? (rng.next() < 1 / (1 + Math.exp(-2 * signal)) ? '1' : '0') : '';
        lines.push(`g${rng.int(3)},g${it},${signal.toFixed(4)},${clicked},${converted}`);
      }
      writeFileSync(path, `${lines.join('\n')}\n`);
    };
    write(join(dir, 'esmm-train.csv'), 2000, 3);
    write(join(dir, 'esmm-test.csv'), 500, 4);
    const esmmSpec = join(dir, 'esmm.json');
    const esmmModel = join(dir, 'esmm');
    const base = JSON.parse(readFileSync(spec, 'utf8'));
    const tasks = [
      { name: 'click', label: 'clicked', type: 'binary' },
      { name: 'conversion', label: 'converted', type: 'binary', conditionalOn: 'click' },
    ];
    writeFileSync(esmmSpec, JSON.stringify({ ...base, tasks }));
    expect(
      (await cli('train', '--data', join(dir, 'esmm-train.csv'), '--spec', esmmSpec, '--out', esmmModel)).code,
    ).toBe(0);

    const evaluation = await cli('evaluate', '--model', esmmModel, '--data', join(dir, 'esmm-test.csv'));
    expect(evaluation.code).toBe(0);
    const conversion = JSON.parse(evaluation.stdout).tasks.conversion;
    const clicks = readFileSync(join(dir, 'esmm-test.csv'), 'utf8')
      .split('\n')
      .filter((l) => /,1,[01]$/.test(l));
    expect(conversion).toMatchObject({ count: 500, conditionalCount: clicks.length });
    expect(conversion.auc).toBeGreaterThan(0.75); // click ∧ conversion over every impression
    expect(conversion.conditionalAuc).toBeGreaterThan(0.75); // conversion given a click, on the clicks

    const out = join(dir, 'esmm-scores.csv');
    expect((await cli('predict', '--model', esmmModel, '--data', join(dir, 'esmm-test.csv'), '--out', out)).code).toBe(
      0,
    );
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('line,click,conversion,conversion|click');
    const [, click, joint, conditional] = lines[1].split(',').map(Number);
    expect(joint).toBeCloseTo(click * conditional, 5);
  }, 180_000);

  it('writes its output whole or not at all, and never over its input', async () => {
    const test = join(dir, 'test.csv');
    const before = readFileSync(test);
    const same = await cli('predict', '--model', model, '--data', test, '--out', test);
    expect(same).toMatchObject({ code: 1, stderr: expect.stringContaining(`--out ${test} is the --data file`) });
    expect(readFileSync(test).equals(before)).toBe(true);

    // A bad row at the end fails the run: the file that was there is kept, and nothing is left beside it.
    const kept = join(dir, 'kept.csv');
    writeFileSync(kept, 'PRECIOUS\n');
    const badEnd = join(dir, 'bad-end.csv');
    writeFileSync(badEnd, `${readFileSync(test, 'utf8')}g1,g1,oops,1,20\n`);
    const failed = await cli('predict', '--model', model, '--data', badEnd, '--out', kept);
    expect(failed).toMatchObject({ code: 1, stderr: expect.stringContaining(`${badEnd}:502, column 3`) });
    expect(readFileSync(kept, 'utf8')).toBe('PRECIOUS\n');
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);

    const artifact = join(model, 'model.mmoe');
    const modelBytes = readFileSync(artifact);
    const overModel = await cli('predict', '--model', model, '--data', test, '--out', artifact);
    expect(overModel).toMatchObject({ code: 1, stderr: expect.stringContaining("is the model's artifact") });
    expect(readFileSync(artifact).equals(modelBytes)).toBe(true);

    // A bad row skipped is named by its line, as evaluate and train name theirs.
    const skipOut = join(dir, 'skipped.csv');
    const skipping = await cli('predict', '--model', model, '--data', badEnd, '--out', skipOut, '--on-bad-row', 'skip');
    expect(skipping).toMatchObject({ code: 0, stderr: expect.stringContaining('skipped 1 bad rows (lines 502)') });

    // Through a symlink to a file: the file is replaced, the link stays a link.
    const target = join(dir, 'target.csv');
    const link = join(dir, 'link.csv');
    writeFileSync(target, 'OLD\n');
    symlinkSync(target, link);
    expect((await cli('predict', '--model', model, '--data', test, '--out', link)).code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toMatch(/^line,click,dwell\n/);

    // `..` after a symlinked directory is the kernel's: the parent of the link's target, not of the link.
    mkdirSync(join(dir, 'real', 'sub'), { recursive: true });
    symlinkSync(join(dir, 'real', 'sub'), join(dir, 'linked'));
    expect(
      (await cli('predict', '--model', model, '--data', test, '--out', `${join(dir, 'linked')}/../x.csv`)).code,
    ).toBe(0);
    expect(readdirSync(join(dir, 'real'))).toContain('x.csv');
    expect(readdirSync(dir)).not.toContain('x.csv');

    // To stderr by name: through the descriptor, after the log line already there (not over it from offset 0).
    const toStderr = await cli('predict', '--model', model, '--data', test, '--out', '/dev/stderr');
    expect(toStderr.code).toBe(0);
    expect(toStderr.stderr).toMatch(/^tfjs backend: .*\nline,click,dwell\n/);
    expect(JSON.parse(toStderr.stdout)).toMatchObject({ rows: 500 });

    // To this process's stdout (a pipe here): the CSV alone there, the summary on stderr.
    const piped = await cli('predict', '--model', model, '--data', test, '--out', '/dev/stdout');
    expect(piped.code).toBe(0);
    expect(piped.stdout.trim().split('\n')).toHaveLength(501);
    expect(piped.stdout).toMatch(/^line,click,dwell\n/);
    expect(piped.stderr).toContain('"rows": 500');

    // Interrupted half-way (Ctrl-C): what it staged is removed, the file that was there kept.
    const big = join(dir, 'big.csv');
    const [head, ...rows] = readFileSync(test, 'utf8').trim().split('\n');
    writeFileSync(big, `${[head, ...Array.from({ length: 400 }, () => rows).flat()].join('\n')}\n`);
    // One process (tsx as node's loader), so that the signal reaches the CLI itself.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', cliMain, 'predict', '--model', model, '--data', big, '--out', kept],
      {
        cwd: root,
        env: { ...process.env, MMOE_BACKEND: 'wasm' },
      },
    );
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(signal ?? code)),
    );
    const staging = () => readdirSync(dir).some((name) => name.startsWith('kept.csv.') && name.endsWith('.tmp'));
    while (!staging()) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGINT');
    expect([130, 'SIGINT']).toContain(await exited);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(readFileSync(kept, 'utf8')).toBe('PRECIOUS\n');

    // Its reader gone (`--out /dev/stdout | head -1`): it stops as coreutils do, killed by SIGPIPE, saying nothing.
    const headed = spawn(
      process.execPath,
      ['--import', 'tsx', cliMain, 'predict', '--model', model, '--data', big, '--out', '/dev/stdout'],
      {
        cwd: root,
        env: { ...process.env, MMOE_BACKEND: 'wasm' },
      },
    );
    let headedErr = '';
    headed.stderr.on('data', (chunk: Buffer) => (headedErr += chunk.toString()));
    headed.stdout.once('data', () => headed.stdout.destroy());
    const headedExit = await new Promise<NodeJS.Signals | number | null>((resolve) =>
      headed.on('exit', (code, signal) => resolve(signal ?? code)),
    );
    expect({ exit: headedExit, errors: headedErr.match(/error:.*/g) }).toEqual({ exit: 141, errors: null });

    const collision = await cli('predict', '--model', model, '--data', test, '--out', kept, '--id-column', 'click');
    expect(collision.stderr).toContain('--id-column click: the output already has a column of that name');
    const headerOnly = join(dir, 'header-only.csv');
    writeFileSync(headerOnly, 'foo,bar\n');
    const wrong = await cli('predict', '--model', model, '--data', headerOnly, '--out', kept);
    expect(wrong.stderr).toContain('the header lacks "user_genre" (features[0])');
    expect(readFileSync(kept, 'utf8')).toBe('PRECIOUS\n');

    // An output directory that cannot be made fails before the training, at once (Node's recursive mkdir hangs here).
    const proc = await cli('train', '--data', test, '--spec', spec, '--out', '/proc/mmoe-cli');
    expect(proc).toMatchObject({ code: 1, stderr: expect.stringContaining('--out /proc/mmoe-cli: ENOENT') });
    expect(proc.stderr).not.toMatch(/epoch 1/);
    const file = await cli('train', '--data', test, '--spec', spec, '--out', kept);
    expect(file.stderr).toContain(`--out ${kept}: ${kept} is not a directory`);
    // predict makes its file's directory as train makes its own, before it loads the model.
    const nested = join(dir, 'made', 'by', 'predict', 'scores.csv');
    expect(await cli('predict', '--model', model, '--data', test, '--out', nested)).toMatchObject({ code: 0 });
    expect(readFileSync(nested, 'utf8')).toMatch(/^line,/);
    const underFile = await cli('predict', '--model', model, '--data', test, '--out', join(kept, 'scores.csv'));
    expect(underFile.stderr).toContain(`--out ${join(kept, 'scores.csv')}: ${kept} is not a directory`);
  }, 120_000);

  it('names the line and column of a bad row, or skips and counts bad rows', async () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(
      bad,
      'user_genre,item_genre,signal,clicked,dwell\ng1,g1,0.5,1,20\ng2,g1,oops,0,19\ng1,g2,0.1\n"g0,g1,0.2,1,21\n',
    );
    const failed = await cli('evaluate', '--model', model, '--data', bad);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`${bad}:3, column 3: signal: "oops" is not a number`);

    const skipped = await cli('evaluate', '--model', model, '--data', bad, '--on-bad-row', 'skip');
    expect(skipped.code).toBe(0);
    expect(JSON.parse(skipped.stdout)).toMatchObject({ examples: 1, skipped: 3 });
    expect(skipped.stderr).toMatch(/skipped 3 bad rows \(lines 3, 4, 5\)/);
    const allBad = join(dir, 'all-bad.csv');
    writeFileSync(allBad, 'user_genre,item_genre,signal,clicked,dwell\ng2,g1,oops,0,19\n');
    const none = await cli('evaluate', '--model', model, '--data', allBad, '--on-bad-row', 'skip');
    expect(none).toMatchObject({ code: 1, stderr: expect.stringContaining(`${allBad}: no readable rows (1 skipped)`) });
  }, 120_000);

  it('explains usage errors and missing inputs', async () => {
    expect(await cli()).toMatchObject({ code: 2, stderr: expect.stringContaining('a command is needed') });
    expect(await cli('--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage:') });
    const usage = await cli('train', '--data', 'x.csv');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('train needs --spec');
    const twice = await cli('evaluate', '--model', 'm', '--data', 'd.csv', '--data', 'e.csv');
    expect(twice).toMatchObject({ code: 2, stderr: expect.stringContaining('--data is given twice') });
    const hex = await cli('train', '--data', 'x.csv', '--spec', 's.json', '--out', 'o', '--threads', '0x2');
    expect(hex).toMatchObject({ code: 2, stderr: expect.stringContaining('--threads must be a positive integer') });
    // An option the command does not read is an error, not a setting silently ignored.
    const foreign = await cli('evaluate', '--model', 'm', '--data', 'd.csv', '--spec', 's.json');
    expect(foreign).toMatchObject({ code: 2, stderr: expect.stringContaining('evaluate takes no --spec') });
    const noColumn = await cli('predict', '--model', 'm', '--data', 'd.csv', '--out', 'o.csv', '--id-column', '');
    expect(noColumn).toMatchObject({ code: 2, stderr: expect.stringContaining('--id-column must name a column') });
    const backend = await cli('evaluate', '--model', 'm', '--data', 'd.csv', '--backend', 'gpu');
    expect(backend.code).toBe(2);
    expect(backend.stderr).toContain('--backend must be one of tensorflow, wasm, cpu (got "gpu")');
    const missing = await cli('evaluate', '--model', join(dir, 'nowhere'), '--data', join(dir, 'test.csv'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no model artifact there/);
    const columns = join(dir, 'columns.csv');
    writeFileSync(columns, 'user_genre,signal\ng1,0.2\n');
    const lacking = await cli('predict', '--model', model, '--data', columns, '--out', join(dir, 'o.csv'));
    expect(lacking.stderr).toContain('the header lacks "item_genre" (features[1])');
  }, 120_000);
});
