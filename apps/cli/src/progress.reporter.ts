import { TrainingEta, type EpochReport, type TrainProgress } from '@app/mmoe';

export interface ProgressReporter {
  onProgress(p: TrainProgress): void;
  onEpochEnd(e: EpochReport): void;
  /** Ends the display; call once training has stopped, however it stopped. */
  done(): void;
}

/** The part of a stream the reporter writes to; process.stderr fits. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

const REDRAW_INTERVAL_MS = 100;
const BAR_WIDTH = 24;

/**
 * On a terminal, a progress bar redrawn in place plus one line per finished epoch; elsewhere (a log file, CI) only
 * the epoch lines, since a redrawn bar would pile up there as thousands of lines.
 */
export function createProgressReporter(stream: ProgressStream = process.stderr): ProgressReporter {
  return stream.isTTY ? new TerminalReporter(stream) : new LogReporter(stream);
}

class LogReporter implements ProgressReporter {
  constructor(private readonly stream: ProgressStream) {}

  onProgress(): void {
    // Nothing per step: the epoch lines are the record.
  }

  onEpochEnd(e: EpochReport): void {
    this.stream.write(`${epochLine(e)}\n`);
  }

  done(): void {
    // Every line written is already complete.
  }
}

class TerminalReporter implements ProgressReporter {
  private lastDraw = -Infinity;
  private barShown = false;
  private readonly eta = new TrainingEta();

  constructor(private readonly stream: ProgressStream) {}

  onProgress(p: TrainProgress): void {
    const now = Date.now();
    const eta = this.eta.secondsLeft(p, now);
    if (now - this.lastDraw < REDRAW_INTERVAL_MS) return;
    this.lastDraw = now;
    const head = `epoch ${p.epoch}/${p.epochs}`;
    const tail =
      `${p.step}/${p.steps}  loss ${formatNumber(p.loss)}  ${Math.round(p.examplesPerSec)} ex/s  ` +
      `ETA ${eta === undefined ? '--' : formatDuration(eta)}`;
    // Stay short of the last column: a full-width line wraps on some terminals and \r then redraws the wrong line.
    const width = (this.stream.columns ?? 80) - 1;
    const barWidth = Math.min(BAR_WIDTH, width - head.length - tail.length - 4);
    const line = barWidth >= 5 ? `${head} [${bar(p.step / p.steps, barWidth)}] ${tail}` : `${head} ${tail}`;
    this.stream.write(`\r${line.slice(0, width)}\x1b[K`);
    this.barShown = true;
  }

  onEpochEnd(e: EpochReport): void {
    this.stream.write(`\r\x1b[K${epochLine(e)}\n`);
    this.barShown = false;
    this.lastDraw = -Infinity;
  }

  done(): void {
    // Keep a bar left by an interrupted epoch, and move below it.
    if (this.barShown) this.stream.write('\n');
    this.barShown = false;
  }
}

function epochLine(e: EpochReport): string {
  const tasks = Object.entries(e.valid.tasks).map(
    ([task, metrics]) =>
      `${task}: ${Object.entries(metrics)
        .map(([name, value]) => `${name}=${formatNumber(value)}`)
        .join(' ')}`,
  );
  return [`epoch ${e.epoch}/${e.epochs}`, `loss ${formatNumber(e.loss)}`, ...tasks, `${e.seconds.toFixed(1)}s`].join(
    '  ',
  );
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(Math.max(fraction, 0), 1) * width);
  return '='.repeat(filled) + ' '.repeat(width - filled);
}

/** Four significant digits, without trailing zeros; counts stay whole. */
function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}
