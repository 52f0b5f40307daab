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
  const start = (execArgv: string[]) =>
    new Worker(source, { ...options, execArgv: [...execArgv, '--require', 'tsx/cjs'] });
  const execArgv = withoutTsx(process.execArgv);
  try {
    return start(execArgv);
  } catch (e) {
    // A Worker refuses V8's and the process's options (`node --max-old-space-size=… --import tsx`), which apply to
    // the whole process anyway; Node names them, and the worker starts without them.
    const refused = refusedExecArgv(e);
    if (!refused) throw e;
    return start(execArgv.filter((arg) => !refused.includes(arg)));
  }
}

/** The parent's options but tsx's own (`--import tsx`, `--require …/node_modules/tsx/…`) and `--eval`'s. */
export function withoutTsx(parent: readonly string[]): string[] {
  const isTsx = (value: string | undefined) =>
    value !== undefined && /^tsx(\/|$)|[\\/]node_modules[\\/]tsx[\\/]/.test(value);
  const kept: string[] = [];
  parent.forEach((arg, i, all) => {
    const flagOfTsx = /^--(require|import)$/.test(arg) && isTsx(all[i + 1]);
    const valueOfTsx = isTsx(arg) && /^--(require|import)$/.test(all[i - 1] ?? '');
    const inlineTsx = /^--(require|import)=/.test(arg) && isTsx(arg.slice(arg.indexOf('=') + 1));
    if (!flagOfTsx && !valueOfTsx && !inlineTsx && arg !== '--eval' && all[i - 1] !== '--eval') kept.push(arg);
  });
  return kept;
}

/** The options a Worker refused, as Node lists them in ERR_WORKER_INVALID_EXEC_ARGV's message; else undefined. */
export function refusedExecArgv(error: unknown): string[] | undefined {
  if ((error as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') return undefined;
  const listed = /invalid execArgv flags: (.+)$/.exec((error as Error).message)?.[1];
  return listed?.split(', ');
}
