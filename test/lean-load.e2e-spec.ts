import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { startApi } from './fixtures/app.process';
import { freePort } from './fixtures/free-port';

const ROOT = join(__dirname, '..');

describe('the API module graph (e2e: a real Node process)', () => {
  it('loads no TensorFlow.js: it comes in on demand, for an upload or a machine without ONNX Runtime', () => {
    const script = `
      require('./apps/api/src/app.module');
      const tfjs = Object.keys(require.cache).filter((file) => file.includes('@tensorflow'));
      process.stdout.write(JSON.stringify(tfjs));`;
    const run = spawnSync(process.execPath, ['-r', join(ROOT, 'test/fixtures/swc.register.js'), '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual([]);
  }, 90_000);
});

describe('a native backend forced without its binding (e2e: a real API process)', () => {
  it('fails the start naming MMOE_BACKEND, rather than the first upload with a 500', async () => {
    // This machine cannot install @tensorflow/tfjs-node (its install downloads libtensorflow).
    await expect(startApi({ MMOE_BACKEND: 'tensorflow', API_PORT: String(await freePort()) })).rejects.toThrow(
      /exited \(code 1, signal null\) while booting[\s\S]*MMOE_BACKEND=tensorflow, but none of @tensorflow\/tfjs-node-gpu, @tensorflow\/tfjs-node is installed/,
    );
  }, 60_000);
});
