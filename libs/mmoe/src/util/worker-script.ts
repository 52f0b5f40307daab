import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts the worker script `<dir>/<name>`: the compiled .js in a built app; from TypeScript sources (tests, tsx) the
 * .ts through tsx's CommonJS hook. tsx's own flags are not passed on: its ESM loader does not reach into a worker,
 * which then fails on the .ts extension.
 */
export function startWorkerScript(dir: string, name: string, options: WorkerOptions = {}): Worker {
  const compiled = path.join(dir, `${name}.js`);
  if (existsSync(compiled)) return new Worker(compiled, options);
  const source = path.join(dir, `${name}.ts`);
  if (process.execArgv.some((arg) => /swc\.register/.test(arg))) return new Worker(source, options);
  const execArgv: string[] = [];
  process.execArgv.forEach((arg, i, all) => {
    const flagOfTsx = /^--(require|import)$/.test(arg) && /tsx/.test(all[i + 1] ?? '');
    const valueOfTsx = /tsx/.test(arg) && /^--(require|import)$/.test(all[i - 1] ?? '');
    if (!flagOfTsx && !valueOfTsx && arg !== '--eval' && all[i - 1] !== '--eval') execArgv.push(arg);
  });
  return new Worker(source, { ...options, execArgv: [...execArgv, '--require', 'tsx/cjs'] });
}
