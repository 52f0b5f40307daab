import { parseExpression } from 'cron-parser';

/** Schedules run in UTC whatever the time zone of the process that registers them, so every process agrees on the ticks. */
export const CRON_TIMEZONE = 'UTC';

/**
 * How far the shortest gap is looked for: up to 61 runs (more than a cycle of a cron's finest field, at most 60 values),
 * within 8 days of the first one (every day-of-week pattern recurs in a week and a day). cron-parser steps through
 * the calendar, so a sparse cron costs a few ms per run: the bounds keep the check well under a second.
 */
const INTERVAL_RUNS = 61;
/** The macros cron-parser knows (each names its five fields). */
const CRON_MACROS = ['@yearly', '@monthly', '@weekly', '@daily', '@hourly'];
const INTERVAL_SPAN_MS = 8 * 86_400_000;

/**
 * Why `expression` is not a cron expression Bull can schedule (5 fields, or 6 with seconds first), or undefined when
 * it is; the parser is the one Bull itself uses, so what passes here is what Bull will run.
 */
export function cronProblem(expression: string): string | undefined {
  // cron-parser reads an empty expression as "every minute".
  if (expression.trim() === '') return 'must not be empty';
  // It also fills fields left out, from the seconds up: "0 3 * *" ran every minute of the 3rd of each month, "7" every
  // minute of Sundays. A macro (@daily, @hourly …) names its five fields.
  const fields = expression.trim().split(/\s+/).length;
  if (expression.trim().startsWith('@')) {
    // cron-parser reads a macro by its first three letters: "@reboot" was "cannot resolve alias \"reb\"".
    if (!CRON_MACROS.includes(expression.trim()))
      return `must be a macro of ${CRON_MACROS.join(', ')}, or 5 fields (6 with seconds first)`;
  } else if (fields !== 5 && fields !== 6)
    return `must have 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; got ${fields}`;
  try {
    // A day no listed month has (31 in April and June) parses: only looking for its first run finds it never comes.
    parseExpression(expression, { tz: CRON_TIMEZONE }).next();
    return undefined;
  } catch (error) {
    const { message } = error as Error;
    return /loop limit exceeded/.test(message) ? 'never runs: no date matches it' : message;
  }
}

/**
 * Why a valid cron expression runs too often for a training schedule (two of its next runs closer than
 * `minSeconds`, the SCHEDULE_MIN_INTERVAL_SECONDS setting), or undefined.
 */
export function cronIntervalProblem(expression: string, minSeconds: number, from = new Date()): string | undefined {
  const runs = parseExpression(expression, { tz: CRON_TIMEZONE, currentDate: from });
  const first = runs.next().getTime();
  let previous = first;
  for (let i = 1; i < INTERVAL_RUNS && previous - first < INTERVAL_SPAN_MS; i++) {
    const next = runs.next().getTime();
    const seconds = (next - previous) / 1000;
    if (seconds < minSeconds)
      return `runs ${seconds} s apart (${new Date(previous).toISOString()} and ${new Date(next).toISOString()}), below the minimum of ${minSeconds} s between runs (SCHEDULE_MIN_INTERVAL_SECONDS)`;
    previous = next;
  }
  return undefined;
}
