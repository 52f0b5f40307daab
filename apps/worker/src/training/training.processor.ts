import { InjectQueue, OnQueueCompleted, OnQueueFailed, OnQueueStalled, Processor } from '@nestjs/bull';
import { Inject, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Job, Queue } from 'bull';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { noteWasmFailure, wasmAborted } from '@app/mmoe';
import { TRAINING_QUEUE, type TrainingJobOutcome } from '@app/queue';

import { TrainingJobService } from './training-job.service';
import { isPermanent } from './training.errors';

/** Its data is whatever its producer put there until the job service has checked it against the contract. */
type TrainingJob = Job<unknown>;

/** The worker's consumer of the training queue: every job name, WORKER_CONCURRENCY at a time. */
@Processor(TRAINING_QUEUE)
export class TrainingProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(TrainingProcessor.name);

  constructor(
    @InjectQueue(TRAINING_QUEUE) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly training: TrainingJobService,
  ) {}

  /**
   * Registered by hand rather than with @Process(), whose concurrency is fixed at compile time; and only now, once
   * every module is initialised (the tfjs backend above all), so that no job starts on a half-booted worker.
   */
  onApplicationBootstrap(): void {
    // process() settles only when the queue closes, and rejects only if it cannot start (Redis unreachable at boot): a
    // worker that takes no jobs has no reason to live, so it shuts down and leaves the restart to its supervisor.
    this.queue
      .process('*', this.config.WORKER_CONCURRENCY, (job: TrainingJob) => this.handle(job))
      .catch((e: Error) => {
        this.logger.error(`the training queue could not start: ${e.message}`);
        process.kill(process.pid, 'SIGTERM');
      });
    this.logger.log(`taking training jobs, ${this.config.WORKER_CONCURRENCY} at a time`);
  }

  /**
   * On SIGTERM, before the database and Redis connections close: take no new job and let the running ones finish
   * (closing a Bull queue waits for them). If the process is killed before they do, their locks expire and another
   * worker picks them up after the stall interval.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.logger.log('stopping: no new jobs; waiting for the running ones to finish');
    await this.queue.close();
  }

  @OnQueueCompleted()
  onCompleted(job: TrainingJob, result: TrainingJobOutcome): void {
    if ('skipped' in result) return; // logged by the service
    this.logger.log(
      `job ${job.id} done: version ${result.versionId} is ${result.decision === 'canary' ? 'the canary' : 'a candidate'} (${result.reason})`,
    );
  }

  @OnQueueFailed()
  async onFailed(job: TrainingJob, error: Error): Promise<void> {
    // Bull has decided by now: a retry waits in 'delayed', a final failure (or a job stalled too often) is 'failed'.
    const state = await job.getState().catch(() => 'unknown');
    this.logger.error(
      `job ${job.id} failed, attempt ${job.attemptsMade} (${state === 'failed' ? 'final' : `now ${state}`}): ${error.message}`,
    );
  }

  @OnQueueStalled()
  onStalled(job: TrainingJob): void {
    this.logger.warn(`job ${job.id} had stalled (its worker died or hung); it is back in the queue`);
  }

  private async handle(job: TrainingJob): Promise<TrainingJobOutcome> {
    this.logger.log(
      `job ${job.id} (${job.name}) started, attempt ${job.attemptsMade + 1} of ${job.opts.attempts ?? 1}`,
    );
    try {
      return await this.training.run(job);
    } catch (e) {
      // Bull would retry any failure; these would only fail again.
      if (isPermanent(e)) await job.discard();
      // A trap left this process's wasm unusable (every later job would fail, or hang in it), wherever in the job it
      // came (training notes its own; building the network, evaluating, refitting do not): this job fails with the
      // cause (retried as any failure, by whichever worker takes it), and the worker takes no other job and stops
      // for its supervisor to restart it with a fresh instance. SIGTERM's shutdown lets the queue record the failure.
      const failure = noteWasmFailure(e);
      const aborted = wasmAborted();
      if (aborted) {
        this.logger.error(`stopping: ${aborted.message}`);
        await this.queue.pause(true, true).catch(() => undefined);
        setImmediate(() => process.kill(process.pid, 'SIGTERM'));
      }
      throw failure;
    }
  }
}
