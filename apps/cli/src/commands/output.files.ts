import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { lstat, mkdir, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';

/**
 * Creates the directory `dir` and its missing parents, one level at a time (Node 20's recursive mkdir never returns
 * for a path under /proc), before any work is done for it: an output that cannot be written fails at once, not after
 * the training. An error names `flag` and the path it was given (`given`: a file in `dir`, or `dir` itself).
 */
export async function ensureOutputDir(dir: string, flag: string, given = dir): Promise<void> {
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
    throw new Error(`${flag} ${given}: ${(e as Error).message}`);
  }
}

/** One file of an output, written by `write` to the path it is given. */
export interface OutputFile {
  path: string;
  write: (path: string) => Promise<void>;
}

/**
 * Writes the files of one output together: each to a temporary name beside it, then all renamed over their paths, so
 * that a failure (a bad row half-way, a full disk, Ctrl-C) leaves whatever was there before, never a half-written file
 * or a mix of old and new. A symlink to a file is written through (the link stays a link). A stream of this process
 * under a name (/dev/stdout, /proc/self/fd/1) or a path that is no regular file (a pipe) is written in place.
 */
export async function writeOutput(files: readonly OutputFile[], flag: string): Promise<void> {
  const staged: { path: string; at: string }[] = [];
  // An interrupted run removes what it staged, then dies of its signal as it would have.
  const interrupted = (signal: NodeJS.Signals) => {
    for (const { at } of staged) rmSync(at, { force: true });
    process.kill(process.pid, signal);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  signals.forEach((signal) => process.once(signal, interrupted));
  let current = files[0].path;
  try {
    for (const file of files) {
      current = file.path;
      const target = await targetOf(file.path);
      if (target === 'in place') {
        await file.write(file.path);
        continue;
      }
      const at = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
      staged.push({ path: target, at });
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
  } finally {
    signals.forEach((signal) => process.removeListener(signal, interrupted));
  }

  /** The regular file to stage beside and rename over (through symlinks), or 'in place'. */
  async function targetOf(path: string): Promise<string> {
    const { at, stream } = await followLinks(path);
    if (stream) return 'in place';
    const existing = await statOf(at);
    if (existing?.isDirectory()) throw new Error(`${flag} ${path}: a directory, not a file`);
    return existing && !existing.isFile() ? 'in place' : at;
  }
}

/**
 * The descriptor of this process that `path` names (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, or a link
 * to one), if it names one: opening the name again would start a second write at offset 0 (O_TRUNC) beside the
 * process's own (its logs on stderr), and a socket cannot be opened by name at all; the descriptor itself can be
 * written to.
 */
export async function ownDescriptor(path: string): Promise<number | undefined> {
  const { stream } = await followLinks(path);
  const [, dev, pid, fd] = PROCESS_STREAM.exec(stream ?? '') ?? [];
  if (dev === 'stdout') return 1;
  if (dev === 'stderr') return 2;
  const own = pid === undefined || pid === 'self' || pid === 'thread-self' || Number(pid) === process.pid;
  return fd !== undefined && own ? Number(fd) : undefined;
}

/**
 * `path` through its symlinks as the kernel follows them (a link's relative target from its directory's real path,
 * never `..` collapsed as text), or the process stream a hop names.
 */
async function followLinks(path: string): Promise<{ at: string; stream?: string }> {
  let at = path;
  for (let hop = 0; hop < MAX_LINKS; hop++) {
    if (PROCESS_STREAM.test(resolve(at))) return { at, stream: resolve(at) };
    if (!(await lstat(at).catch(() => undefined))?.isSymbolicLink()) break;
    const target = await readlink(at);
    at = isAbsolute(target) ? target : `${await realpath(dirname(at))}/${target}`;
  }
  return { at };
}

/**
 * A stream of a process by name (renaming over it would replace the name, not write to the stream): the device, or
 * the process (none for /dev/fd) and the descriptor.
 */
const PROCESS_STREAM = /^\/(?:dev\/(stdout|stderr)|(?:dev|proc\/(self|thread-self|\d+))\/fd\/(\d+))$/;
/** Symlinks followed at most, as the kernel's ELOOP. */
const MAX_LINKS = 40;

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
