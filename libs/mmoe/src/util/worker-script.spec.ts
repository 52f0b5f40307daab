import { Worker } from 'node:worker_threads';

import { workerExecArgv } from './worker-script';

describe('workerExecArgv', () => {
  it("keeps the parent's loaders and Node options a worker takes, not tsx's, --eval's or V8's", () => {
    const parent = [
      '--max-old-space-size=2048',
      '--import',
      'tsx',
      '--require',
      './setup.js',
      '--enable-source-maps',
      '--eval',
      'main()',
      '--stack-size=2000',
      '--conditions=development',
    ];
    const argv = workerExecArgv(parent);
    expect(argv).toEqual([
      '--require',
      './setup.js',
      '--enable-source-maps',
      '--conditions=development',
      '--require',
      'tsx/cjs',
    ]);
    // What Node itself says of them (the loaders aside, whose files do not exist here).
    const start = (execArgv: string[]) => new Worker('0', { eval: true, execArgv });
    expect(() => start(['--max-old-space-size=2048'])).toThrow(
      expect.objectContaining({ code: 'ERR_WORKER_INVALID_EXEC_ARGV' }),
    );
    return new Promise((resolve) => start(['--enable-source-maps', '--conditions=development']).once('exit', resolve));
  });
});
