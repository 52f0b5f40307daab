import type { Job, Queue } from 'bull';

import type { AppConfig } from '@app/config';
import { WasmAbortedError } from '@app/mmoe';

import type { TrainingJobService } from './training-job.service';
import { TrainingInputError } from './training.errors';
import { TrainingProcessor } from './training.processor';

/** WebAssembly.RuntimeError, which the project's lib typings leave out. */
const { RuntimeError } = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly;

describe('TrainingProcessor', () => {
  const job = { id: 'j1', name: 'train', attemptsMade: 0, opts: { attempts: 3 }, discard: jest.fn() };
  const queue = { pause: jest.fn().mockResolvedValue(undefined) };
  const processorFailing = (error: Error) =>
    new TrainingProcessor(
      queue as unknown as Queue,
      { WORKER_CONCURRENCY: 1 } as AppConfig,
      {
        run: () => Promise.reject(error),
      } as unknown as TrainingJobService,
    );
  const handle = (processor: TrainingProcessor) =>
    (processor as unknown as { handle(job: Job): Promise<unknown> }).handle(job as unknown as Job);
  let kill: jest.SpyInstance;

  beforeEach(() => {
    kill = jest.spyOn(process, 'kill').mockImplementation(() => true);
    job.discard.mockClear();
    queue.pause.mockClear();
  });
  afterEach(() => kill.mockRestore());
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('fails a job on bad input at once, and goes on taking jobs', async () => {
    await expect(handle(processorFailing(new TrainingInputError('too few rows')))).rejects.toThrow('too few rows');
    await settle();
    expect(job.discard).toHaveBeenCalled();
    expect(kill).not.toHaveBeenCalled();
  });

  it('stops the worker once a trap left its wasm unusable, wherever in the job: no other job, this one retried', async () => {
    // A trap outside the training loop (evaluating, say), which nothing noted before it reached the processor.
    const failed = await handle(processorFailing(new RuntimeError('memory access out of bounds'))).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(WasmAbortedError);
    expect((failed as Error).message).toMatch(/must restart/);
    expect(job.discard).not.toHaveBeenCalled();
    expect(queue.pause).toHaveBeenCalledWith(true, true);
    await settle();
    expect(kill).toHaveBeenCalledWith(process.pid, 'SIGTERM');
  });
});
