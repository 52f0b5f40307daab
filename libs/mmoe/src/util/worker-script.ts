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
  return new Worker(source, { ...options, execArgv: workerExecArgv(process.execArgv) });
}

/** Node's own options a worker takes (given explicitly, a Worker refuses V8's and the process's: `--max-old-space-size`). */
const WORKER_OPTION =
  /^(--(require|import|loader|experimental-loader|conditions)(=.*)?|-r|-C|--enable-source-maps|--no-warnings|--no-deprecation|--experimental-.*)$/;
const TAKES_VALUE = /^(--(require|import|loader|experimental-loader|conditions)|-r|-C)$/;

/**
 * The parent's options a worker run from TypeScript sources gets, with tsx's CommonJS hook: tsx's own flags and
 * `--eval` left out, and what a worker refuses (V8's options apply to the whole process, the worker included).
 */
export function workerExecArgv(parent: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < parent.length; i++) {
    const arg = parent[i];
    const value = TAKES_VALUE.test(arg) ? parent[i + 1] : undefined;
    if (value !== undefined) i++;
    if (!WORKER_OPTION.test(arg) || /tsx/.test(value ?? arg)) continue;
    kept.push(arg, ...(value === undefined ? [] : [value]));
  }
  return [...kept, '--require', 'tsx/cjs'];
}
