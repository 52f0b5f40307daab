import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Creates the directory `dir` and its missing parents, one level at a time (Node 20's recursive mkdir never returns
 * for a path under /proc), before any work is done for it: an output that cannot be written fails at once, not after
 * the training.
 */
export async function ensureOutputDir(dir: string, flag: string): Promise<void> {
  const missing: string[] = [];
  try {
    for (let at = resolve(dir); ; at = dirname(at)) {
      const found = await statOf(at);
      if (found?.isDirectory()) break;
      if (found) throw new Error(`${at} is not a directory`);
      missing.unshift(at);
      if (dirname(at) === at) break;
    }
    for (const at of missing) await mkdir(at);
  } catch (e) {
    throw new Error(`${flag} ${dir}: ${(e as Error).message}`);
  }
}

/** One file of an output, written by `write` to the path it is given. */
export interface OutputFile {
  path: string;
  write: (path: string) => Promise<void>;
}

/**
 * Writes the files of one output together: each to a temporary name beside it, then all renamed over their paths, so
 * that a failure (a bad row half-way, a full disk) leaves whatever was there before, never a half-written file or a
 * mix of old and new. A path that exists and is not a regular file (/dev/stdout, a pipe) is written in place.
 */
export async function writeOutput(files: readonly OutputFile[], flag: string): Promise<void> {
  const staged: { path: string; at: string }[] = [];
  let current = files[0].path;
  try {
    for (const file of files) {
      current = file.path;
      const existing = await statOf(file.path);
      if (existing && !existing.isFile()) {
        if (existing.isDirectory()) throw new Error(`${flag} ${file.path}: a directory, not a file`);
        await file.write(file.path);
        continue;
      }
      const at = `${file.path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
      staged.push({ path: file.path, at });
      await file.write(at);
    }
    for (const { at, path } of staged) {
      current = path;
      await rename(at, path);
    }
  } catch (e) {
    await Promise.all(staged.map(({ at }) => rm(at, { force: true })));
    // The system's errors (a full disk: "ENOSPC …, write") often name no file; the input's name theirs.
    if (typeof (e as NodeJS.ErrnoException).code === 'string')
      throw new Error(`${flag} ${current}: ${(e as Error).message}`);
    throw e;
  }
}

/** Whether two paths name the same file (the second may not exist). */
export async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([statOf(a), statOf(b)]);
  return !!x && !!y && x.dev === y.dev && x.ino === y.ino;
}

async function statOf(path: string) {
  return stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw e;
  });
}
