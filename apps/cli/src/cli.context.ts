import { BadRowPolicy } from '@app/mmoe';

/** What every command gets: where to write, and the options shared by all of them. */
export interface CliContext {
  onBadRow: BadRowPolicy;
  /** The TensorFlow.js backend in use, as reports name it (set once the engine started). */
  backend?: string;
  stderr: NodeJS.WriteStream;
  /** Human-readable messages go to stderr so that stdout stays machine-readable. */
  log(message: string): void;
  /** The command's result, as one JSON document on stdout (on stderr when stdout carries the command's output). */
  print(result: unknown, to?: 'stdout' | 'stderr'): void;
  reportSkipped(path: string, loaded: { skipped: number; skippedLines: readonly number[] }): void;
}

export function createCliContext(
  onBadRow: BadRowPolicy,
  stdout: NodeJS.WriteStream = process.stdout,
  stderr: NodeJS.WriteStream = process.stderr,
): CliContext {
  const log = (message: string) => stderr.write(`${message}\n`);
  return {
    onBadRow,
    stderr,
    log,
    print: (result, to = 'stdout') => (to === 'stdout' ? stdout : stderr).write(`${JSON.stringify(result, null, 2)}\n`),
    reportSkipped: (path, { skipped, skippedLines }) => {
      if (skipped > 0)
        log(
          `${path}: skipped ${skipped} bad rows (lines ${skippedLines.slice(0, 10).join(', ')}${skipped > 10 ? ', …' : ''})`,
        );
    },
  };
}
