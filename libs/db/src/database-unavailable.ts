import { isNetworkErrorCode } from '@app/common';

/** SQLSTATEs of a server going away: admin_shutdown, crash_shutdown, cannot_connect_now (starting, stopping). */
const SHUTDOWN_STATES = new Set(['57P01', '57P02', '57P03']);
/** What pg and its pool say when a connection dies or cannot be had in time; they carry no code. */
const LOST_CONNECTION =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/;

/**
 * Whether an error means Postgres cannot be reached (down, restarting, unreachable) rather than that a query was
 * wrong: the API answers the former with a 503 that a client may retry. TypeORM wraps driver errors
 * (QueryFailedError.driverError); pg's pool gives raw socket errors.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const { code, message, driverError, cause } = e as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
    };
    if (isNetworkErrorCode(code) || (typeof code === 'string' && (SHUTDOWN_STATES.has(code) || code.startsWith('08'))))
      return true;
    if (typeof message === 'string' && LOST_CONNECTION.test(message)) return true;
    e = driverError ?? cause;
  }
  return false;
}
