import { loadConfig } from './app-config';
import { cronIntervalProblem, cronProblem } from './cron';

describe('cronIntervalProblem', () => {
  const from = new Date('2025-03-05T12:34:56Z'); // a Wednesday

  it('names the closest two of the next runs when they are below the minimum', () => {
    expect(cronIntervalProblem('* * * * * *', 60, from)).toBe(
      'runs 1 s apart (2025-03-05T12:34:57.000Z and 2025-03-05T12:34:58.000Z), below the minimum of 60 s between runs (SCHEDULE_MIN_INTERVAL_SECONDS)',
    );
    expect(cronIntervalProblem('*/15 * * * *', 3600, from)).toMatch(/^runs 900 s apart/);
  });

  it('finds a short gap that only occurs once a day or once a week', () => {
    expect(cronIntervalProblem('0,1 0 0 * * *', 60, from)).toMatch(/^runs 1 s apart \(2025-03-06T00:00:00/);
    // Monday 03:00 and 03:00:30 only: five days ahead of the start.
    expect(cronIntervalProblem('0,30 0 3 * * 1', 60, from)).toMatch(/^runs 30 s apart \(2025-03-10T03:00:00/);
  });

  it('passes a cron whose runs are at least the minimum apart, sparse ones included', () => {
    expect(cronIntervalProblem('* * * * *', 60, from)).toBeUndefined();
    expect(cronIntervalProblem('0 3 * * *', 60, from)).toBeUndefined();
    expect(cronIntervalProblem('0 0 29 2 *', 86_400, from)).toBeUndefined();
    expect(cronIntervalProblem('*/10 * * * * *', 10, from)).toBeUndefined();
  });
});

describe('cronProblem', () => {
  it('names what is wrong with an expression Bull could not schedule', () => {
    expect(cronProblem('0 3 * * *')).toBeUndefined();
    expect(cronProblem(' ')).toBe('must not be empty');
    expect(cronProblem('61 * * * *')).toEqual(expect.any(String));
  });

  it('refuses a cron that parses but never runs (the 31st of months that have 30 days)', () => {
    expect(cronProblem('0 0 31 4,6 *')).toBe('never runs: no date matches it');
    expect(cronProblem('0 0 30 1,4 *')).toBeUndefined();
    expect(() => loadConfig({ RETRAIN_CRON: '0 0 31 4,6 *' })).toThrow(/RETRAIN_CRON.*never runs/);
  });

  it('refuses fields left out, which the parser would fill from the seconds up (every minute of the 3rd)', () => {
    const fieldCount = (n: number) =>
      `must have 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; got ${n}`;
    expect(cronProblem('0 3 * *')).toBe(fieldCount(4));
    expect(cronProblem('7')).toBe(fieldCount(1));
    expect(cronProblem('0 0 3 * * *')).toBeUndefined();
    expect(cronProblem('@daily')).toBeUndefined();
  });

  it("names the macros it takes, where the parser named an alias by a macro's first letters", () => {
    const macros = 'must be a macro of @yearly, @monthly, @weekly, @daily, @hourly, or 5 fields (6 with seconds first)';
    expect(cronProblem('@reboot')).toBe(macros);
    expect(cronProblem('@midnight')).toBe(macros);
    expect(cronProblem('@daily 3')).toBe(macros);
    for (const macro of ['@yearly', '@monthly', '@weekly', '@hourly']) expect(cronProblem(macro)).toBeUndefined();
  });
});
