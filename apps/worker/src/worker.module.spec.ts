import { Logger } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import * as tf from '@tensorflow/tfjs';

import { APP_CONFIG, loadConfig } from '@app/config';

import { WorkerModule } from './worker.module';

describe('WorkerModule', () => {
  let context: TestingModule;
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);

  beforeAll(async () => {
    // The test database and Redis db (test-env.ts); the worker connects to both as it boots.
    context = await Test.createTestingModule({ imports: [WorkerModule] })
      .overrideProvider(APP_CONFIG)
      .useValue(loadConfig({ ...process.env, MMOE_BACKEND: 'wasm', WORKER_CONCURRENCY: '2' }))
      .compile();
    // A TestingModule is an application context like the one main.ts creates; init() runs the same boot hooks.
    await context.init();
  });

  afterAll(async () => {
    await context.close();
    log.mockRestore();
  });

  it('boots on the backend the config asks for and reports it', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/^tfjs backend: wasm \(.+\)$/));
  });

  it('takes training jobs with the configured concurrency once booted', () => {
    expect(log).toHaveBeenCalledWith('taking training jobs, 2 at a time');
  });
});
