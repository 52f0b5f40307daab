import { Worker } from 'node:worker_threads';

import { refusedExecArgv, withoutTsx } from './worker-script';

describe('worker options from sources', () => {
  it("drops tsx's own flags and --eval's, and nothing that merely names tsx", () => {
    const parent = [
      '--max-old-space-size=2048',
      '--import',
      'tsx',
      '--require',
      '/repo/node_modules/tsx/dist/preflight.cjs',
      '--require',
      '/home/me/tsx-project/setup.js',
      '--experimental-default-type',
      'commonjs',
      '--eval',
      'main()',
    ];
    expect(withoutTsx(parent)).toEqual([
      '--max-old-space-size=2048',
      '--require',
      '/home/me/tsx-project/setup.js',
      '--experimental-default-type',
      'commonjs',
    ]);
  });

  it('reads from Node which options a Worker refuses, and the worker starts without them', async () => {
    const execArgv = ['--max-old-space-size=2048', '--experimental-default-type', 'commonjs', '--stack-size=900'];
    let refused: string[] | undefined;
    try {
      new Worker('0', { eval: true, execArgv });
    } catch (e) {
      refused = refusedExecArgv(e);
    }
    expect(refused).toEqual(['--max-old-space-size=2048', '--stack-size=900']);
    const worker = new Worker('0', { eval: true, execArgv: execArgv.filter((arg) => !refused!.includes(arg)) });
    await new Promise((resolve) => worker.once('exit', resolve));
    expect(refusedExecArgv(new Error('other'))).toBeUndefined();
  });
});
