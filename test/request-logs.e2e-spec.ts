import { connect } from 'node:net';

import { startApi, type AppProcess } from './fixtures/app.process';
import { freePort } from './fixtures/free-port';
import { tinyArtifact } from './fixtures/model.fixture';
import { seedProduction } from './fixtures/outage.fixture';

const TOKEN = 'aborted-requests-test-token';

interface LogLine {
  level: number;
  context?: string;
  msg?: string;
  requestId?: string;
  err?: unknown;
  stack?: unknown;
}

/** Sends the head and the first `sent` bytes of a `POST /admin/models` body, then drops the connection. */
function abortedUpload(port: number, body: Buffer, sent: number, waitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        'POST /admin/models HTTP/1.1\r\nHost: localhost\r\n' +
          `Authorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      socket.write(body.subarray(0, sent));
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, waitMs);
    });
    socket.on('error', reject);
  });
}

/**
 * The process's scheduled chores (the live join, the policy …) log under the runner's context whatever requests do:
 * a tick skipped on a busy machine is theirs, not these requests'.
 */
const BACKGROUND = new Set(['RepeatableJobRunner']);

/** The JSON lines of `text` (pino's), skipping anything else the process printed. */
const jsonLines = (text: string): LogLine[] =>
  text.split('\n').flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as LogLine] : []));

/** The lines of `text` but the background chores'. */
const requestLines = (text: string): LogLine[] => jsonLines(text).filter((line) => !BACKGROUND.has(line.context ?? ''));

describe('request logs (e2e)', () => {
  let api: AppProcess;
  let port: number;

  beforeAll(async () => {
    await seedProduction(process.env.DATABASE_URL!);
    port = await freePort();
    api = await startApi({ API_PORT: String(port), API_HOST: '127.0.0.1', ADMIN_TOKEN: TOKEN });
  });

  afterAll(() => api.stop());

  it('logs an upload the client abandons at info, without a stack, and keeps serving', async () => {
    const body = Buffer.from(JSON.stringify({ artifact: (await tinyArtifact()).artifact.toString('base64') }));
    const before = api.output().length;
    // Mid-body (the parser is waiting for the rest), and right after the last byte (the handler is running).
    await abortedUpload(port, body, body.length >> 1, 200);
    await abortedUpload(port, body, body.length, 0);
    await abortedUpload(port, body, body.length, 5);

    const live = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(10_000) });
    expect(live.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the handlers of the last two finish and log
    const lines = requestLines(api.output().slice(before));
    const aborted = lines.filter((line) => line.msg === 'request aborted');
    expect(aborted.length).toBeGreaterThanOrEqual(1);
    for (const line of aborted) expect(line.level).toBe(30);
    // Nothing at warn or above, and no error object or stack anywhere in what these requests logged.
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    expect(lines.filter((line) => line.err !== undefined || line.stack !== undefined)).toEqual([]);
  });

  it("logs a client's mistake (400, 413, 415) as its request line at info, never as an error", async () => {
    const before = api.output().length;
    const send = (body: string, contentType = 'application/json') =>
      fetch(`http://127.0.0.1:${port}/v1/score`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
        signal: AbortSignal.timeout(10_000),
      });
    const statuses = [
      (await send(`{"userId":"u1","itemIds":["i0"],"context":${'{"a":'.repeat(50)}1${'}'.repeat(50)}}`)).status,
      (await send('{"userId":')).status,
      (await send('{}', 'text/plain')).status,
      (await send('{}', 'application/json; charset=utf-16')).status,
      (await send(`"${'x'.repeat(2_000_000)}"`)).status,
    ];
    expect(statuses).toEqual([400, 400, 415, 415, 413]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lines = requestLines(api.output().slice(before));
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    expect(lines.filter((line) => line.err !== undefined || line.stack !== undefined)).toEqual([]);
    expect(lines.filter((line) => line.level === 30 && line.msg === 'request completed')).toHaveLength(5);
  });

  it("tags a line logged while serving a request with that request's id", async () => {
    // Text in a numeric feature: scoring reads it as missing and warns, once, from inside the request.
    const put = await fetch(`http://127.0.0.1:${port}/v1/items/log-item/features`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: { item_price: 'cheap' } }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(put.status).toBe(200);
    const before = api.output().length;
    // The body in two packets: the handler runs after a later socket event, and must still see the request's id. The
    // 100 ms between them would leave half the default deadline on a busy machine: this request allows itself 5 s.
    const status = await new Promise<string>((resolve, reject) => {
      const body = JSON.stringify({ userId: 'u1', itemIds: ['log-item'] });
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          'POST /v1/score HTTP/1.1\r\nHost: localhost\r\nx-request-id: log-7\r\nx-request-deadline-ms: 5000\r\n' +
            'Connection: close\r\n' +
            `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
        );
        setTimeout(() => socket.write(body.slice(5)), 100);
      });
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('end', () => resolve(received.split('\r\n')[0]));
      socket.on('error', reject);
    });
    expect(status).toBe('HTTP/1.1 200 OK');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lines = jsonLines(api.output().slice(before));
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        requestId: 'log-7',
        msg: expect.stringMatching(/item_price.*scored as missing/),
      }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ level: 30, requestId: 'log-7', msg: 'request completed' }));
  });

  it("logs the per-second summary of shed requests as no request's line", async () => {
    const before = api.output().length;
    // 1 ms for 200 candidates no store holds: its deadline passes before inference (or admission sees it would).
    const response = await fetch(`http://127.0.0.1:${port}/v1/score`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'log-8', 'x-request-deadline-ms': '1' },
      body: JSON.stringify({ userId: 'u-shed', itemIds: Array.from({ length: 200 }, (_, i) => `shed-${i}`) }),
      signal: AbortSignal.timeout(10_000),
    });
    expect([503, 504]).toContain(response.status);
    const summary = () =>
      jsonLines(api.output().slice(before)).find((line) => /^shed 1 score requests/.test(line.msg ?? ''));
    for (let i = 0; !summary() && i < 100; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(summary()).toMatchObject({ level: 40 });
    expect(summary()!.requestId).toBeUndefined();
  });
});
