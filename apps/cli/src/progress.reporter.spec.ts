import { createProgressReporter, ProgressReporter, ProgressStream } from './progress.reporter';

class FakeStream implements ProgressStream {
  readonly writes: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {}
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
  get output(): string {
    return this.writes.join('');
  }
}

const CLEAR_LINE = '\x1b[K';

/** The text of a redraw, without the carriage return before it and the clearing after it. */
function redrawText(write: string): string {
  expect(write.startsWith('\r') && write.endsWith(CLEAR_LINE)).toBe(true);
  return write.slice(1, -CLEAR_LINE.length);
}

const valid = {
  examples: 5000,
  tasks: { ctr: { auc: 0.78123, logloss: 0.40119, count: 5000 }, cvr: { auc: 0.7 } },
  gates: {},
  calibration: {},
};

/** Drives a reporter through a run whose every step takes `msPerStep` of (fake) time. */
function simulate(
  reporter: ProgressReporter,
  epochs: number,
  steps: number,
  msPerStep: number,
  stopAfterStep?: number,
): void {
  let now = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let step = 1; step <= steps; step++) {
      now += msPerStep;
      jest.setSystemTime(now);
      reporter.onProgress({ epoch, epochs, step, steps, loss: 0.5 / step, examplesPerSec: 1234.4 });
      if (step === stopAfterStep) return reporter.done();
    }
    reporter.onEpochEnd({ epoch, epochs, loss: 0.41234, valid, seconds: (steps * msPerStep) / 1000, improved: true });
  }
  reporter.done();
}

describe('createProgressReporter', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  describe('not on a terminal', () => {
    it('writes exactly one line per epoch and nothing per step', () => {
      const stream = new FakeStream(false);
      simulate(createProgressReporter(stream), 3, 50, 20);
      expect(stream.writes).toHaveLength(3);
      expect(stream.output).not.toContain('\r');
      expect(stream.output.split('\n')).toEqual([
        'epoch 1/3  loss 0.4123  ctr: auc=0.7812 logloss=0.4012 count=5000  cvr: auc=0.7  1.0s',
        'epoch 2/3  loss 0.4123  ctr: auc=0.7812 logloss=0.4012 count=5000  cvr: auc=0.7  1.0s',
        'epoch 3/3  loss 0.4123  ctr: auc=0.7812 logloss=0.4012 count=5000  cvr: auc=0.7  1.0s',
        '',
      ]);
    });
  });

  describe('on a terminal', () => {
    const redraws = (stream: FakeStream) => stream.writes.filter((w) => w.startsWith('\r') && !w.endsWith('\n'));

    it('redraws one bar in place, at most 10 times a second, with the epoch lines in between', () => {
      const stream = new FakeStream(true);
      simulate(createProgressReporter(stream), 2, 50, 20);
      // 100 updates over 2 s of fake time.
      expect(redraws(stream).length).toBeGreaterThanOrEqual(10);
      expect(redraws(stream).length).toBeLessThanOrEqual(22);
      for (const w of redraws(stream)) {
        expect(redrawText(w)).toMatch(
          /^epoch [12]\/2 \[[= ]{24}\] \d+\/50 {2}loss [\d.]+ {2}1234 ex\/s {2}ETA (--|\d+s)$/,
        );
      }
      expect(stream.output).toContain('ETA');
      expect(stream.writes.filter((w) => w.endsWith('\n'))).toEqual([
        '\r\x1b[Kepoch 1/2  loss 0.4123  ctr: auc=0.7812 logloss=0.4012 count=5000  cvr: auc=0.7  1.0s\n',
        '\r\x1b[Kepoch 2/2  loss 0.4123  ctr: auc=0.7812 logloss=0.4012 count=5000  cvr: auc=0.7  1.0s\n',
      ]);
    });

    it('estimates the time left in the whole run from the measured rate', () => {
      const stream = new FakeStream(true);
      simulate(createProgressReporter(stream), 2, 1000, 1000, 11);
      // 10 steps in 10 s measured since the first update; 1989 steps to go.
      expect(redraws(stream)[0]).toContain('ETA --');
      expect(redraws(stream).at(-1)).toContain('11/1000');
      expect(redraws(stream).at(-1)).toContain('ETA 33m09s');
    });

    it('fits the line into a narrow terminal, dropping the bar when there is no room', () => {
      for (const columns of [60, 30]) {
        const stream = new FakeStream(true, columns);
        simulate(createProgressReporter(stream), 1, 20, 200);
        for (const w of redraws(stream)) expect(redrawText(w).length).toBeLessThan(columns);
        if (columns === 60) expect(redraws(stream).at(-1)).toMatch(/\[[= ]{5,23}\]/);
        else expect(redraws(stream).at(-1)).not.toMatch(/\[[= ]/);
      }
    });

    it('ends an interrupted bar with a line break, and adds nothing after a finished epoch', () => {
      const interrupted = new FakeStream(true);
      simulate(createProgressReporter(interrupted), 2, 50, 20, 30);
      expect(interrupted.writes.at(-1)).toBe('\n');
      const finished = new FakeStream(true);
      simulate(createProgressReporter(finished), 1, 50, 20);
      expect(finished.writes.at(-1)).toMatch(/^\r.*epoch 1\/1 .*\n$/);
    });
  });
});
