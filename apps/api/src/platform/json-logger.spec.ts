import type { AppConfig } from '@app/config';

import { JsonLogger, requestContext } from './json-logger';

/** A logger at `level` writing its lines into an array. */
function capture(level: AppConfig['LOG_LEVEL']) {
  const lines: Record<string, unknown>[] = [];
  const logger = new JsonLogger({ LOG_LEVEL: level } as AppConfig, {
    write: (line: string) => void lines.push(JSON.parse(line)),
  });
  return { logger, lines };
}

describe('JsonLogger', () => {
  it("writes Nest's (message, context) as one JSON line with the current request's id", () => {
    const { logger, lines } = capture('log');
    requestContext.run('req-7', () => logger.warn('stored values cannot be read', 'ScoringService'));
    logger.log('outside any request', 'Api');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        context: 'ScoringService',
        requestId: 'req-7',
        msg: 'stored values cannot be read',
      }),
      expect.objectContaining({ level: 30, context: 'Api', msg: 'outside any request' }),
    ]);
    expect(lines[1]).not.toHaveProperty('requestId');
  });

  it('keeps the stack of an error logged as (message, stack, context), and the error of (error, context)', () => {
    const { logger, lines } = capture('log');
    logger.error('job failed', 'Error: boom\n    at x', 'Worker');
    logger.error(new Error('kaput'), 'Registry');
    expect(lines[0]).toMatchObject({ level: 50, context: 'Worker', msg: 'job failed', stack: 'Error: boom\n    at x' });
    expect(lines[1]).toMatchObject({ level: 50, context: 'Registry', msg: 'kaput', err: { message: 'kaput' } });
  });

  it('writes nothing below LOG_LEVEL, whatever it is asked', () => {
    const { logger, lines } = capture('warn');
    logger.log('dropped', 'Api');
    logger.debug('dropped');
    logger.fields('info', { requestId: 'r' }, 'request completed');
    logger.warn('kept');
    expect(lines.map((l) => l.msg)).toEqual(['kept']);
  });
});
