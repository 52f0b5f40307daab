import { parseExpression } from 'cron-parser';

/** Schedules run in UTC whatever the time zone of the process that registers them, so every process agrees on the ticks. */
export const CRON_TIMEZONE = 'UTC';

/**
 * Why `expression` is not a cron expression Bull can schedule (5 fields, or 6 with seconds first), or undefined when
 * it is; the parser is the one Bull itself uses, so what passes here is what Bull will run.
 */
export function cronProblem(expression: string): string | undefined {
  // cron-parser reads an empty expression as "every minute".
  if (expression.trim() === '') return 'must not be empty';
  try {
    parseExpression(expression, { tz: CRON_TIMEZONE });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
