import { createServer } from 'node:net';

import { startApi } from './fixtures/app.process';
import { freePort } from './fixtures/free-port';

// API_PROCESSES > 1: a primary and its processes on one port (node's cluster), as real processes.
describe('API processes under one primary (e2e)', () => {
  it('serves on its port and stops every process, exit code 0, on SIGTERM', async () => {
    const port = await freePort();
    const api = await startApi({ API_PROCESSES: '2', API_PORT: String(port), API_HOST: '127.0.0.1' });
    try {
      for (let i = 0; i < 4; i++) expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
    } finally {
      expect(await api.stop()).toEqual({ code: 0, signal: null });
    }
  }, 120_000);

  it('stops, with exit code 1, when its processes cannot start: not 0, not a restart loop', async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      await expect(startApi({ API_PROCESSES: '2', API_PORT: String(port), API_HOST: '127.0.0.1' })).rejects.toThrow(
        /exited \(code 1, signal null\) while booting[\s\S]*before it listened; stopping/,
      );
    } finally {
      taken.close();
    }
  }, 120_000);
});
