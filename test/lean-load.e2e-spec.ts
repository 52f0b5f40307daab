import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

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
