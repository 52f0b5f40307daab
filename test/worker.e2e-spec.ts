import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Bull, { type Job, type Queue } from 'bull';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { EventRepository, FeatureRepository, ModelVersionEntity } from '@app/db';
import {
  generateInteractions,
  initBackend,
  interactionsToRecords,
  MultiTaskModel,
  parseModelSpec,
  RawTable,
  type InteractionData,
} from '@app/mmoe';
import { REPORT_CONTENT_SECURITY_POLICY } from '@app/mmoe/report/training-report';
import {
  QUEUE_PREFIX,
  TRAINING_JOB_OPTIONS,
  TRAINING_QUEUE,
  TrainingCancellationRepository,
  TrainingJobName,
  type TrainingJobPayload,
  type TrainingJobProgress,
  type TrainingJobResult,
} from '@app/queue';
import { REDIS } from '@app/redis';
import { ModelRegistryService, type HoldoutComparison } from '@app/registry';

import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import { decideRollout } from '../apps/worker/src/training/evaluation-gate.rules';
import { createApiApp } from './api-app.factory';
import { startWorker, type WorkerProcess } from './fixtures/app.process';

const TOKEN = 'worker-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const START = new Date('2025-01-01T00:00:00Z');
const DAYS = 10;

/** Small enough to train in a few seconds on wasm: the synthetic log's features, its three tasks, a tiny MMoE. */
const SPEC = parseModelSpec({
  features: [
    { name: 'user_country', type: 'categorical', embeddingDim: 3 },
    { name: 'user_age', type: 'numeric' },
    { name: 'user_device', type: 'categorical', embeddingDim: 2 },
    { name: 'user_activity', type: 'numeric' },
    { name: 'item_genre', type: 'categorical', embeddingDim: 4 },
    { name: 'item_length_min', type: 'numeric' },
    { name: 'item_price', type: 'numeric' },
    { name: 'item_age_days', type: 'numeric' },
    { name: 'item_popularity', type: 'numeric' },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'like', label: 'like', type: 'binary', weight: 0.5 },
    { name: 'watch_time', label: 'watch_time', type: 'regression', weight: 0.05 },
  ],
  model: { architecture: 'mmoe', experts: 3, expertUnits: [12], towerUnits: [6] },
  training: { epochs: 3, batchSize: 128, learningRate: 0.01, seed: 1, earlyStoppingPatience: 0 },
});

const EVENTS_WINDOW: TrainingJobPayload['source'] = {
  kind: 'events',
  from: START.toISOString(),
  to: new Date(START.getTime() + DAYS * 86_400_000).toISOString(),
};

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

describe('training worker (e2e: real Postgres, Redis and worker processes)', () => {
  let app: NestFastifyApplication;
  let dataSource: DataSource;
  let registry: ModelRegistryService;
  let queue: Queue<TrainingJobPayload>;
  let worker: WorkerProcess | undefined;
  let data: InteractionData;
  let productionId: number;

  /** Queued as the admin API queues it: the shared default options and a unique job id. */
  const enqueue = (payload: Omit<TrainingJobPayload, 'requestedBy'>) =>
    queue.add(
      TrainingJobName.Train,
      { ...payload, requestedBy: 'test' },
      { ...TRAINING_JOB_OPTIONS, jobId: randomUUID() },
    );

  /** The job once it has completed or failed, fetched after that (a job fetched earlier holds no result yet). */
  const settled = (job: Job, timeoutMs: number) =>
    waitFor(
      `job ${job.id} to finish`,
      async () => {
        const state = await (await queue.getJob(job.id))!.getState();
        return state === 'completed' || state === 'failed' ? { state, job: (await queue.getJob(job.id))! } : undefined;
      },
      timeoutMs,
    );

  const finished = async (job: Job, timeoutMs: number) => {
    const done = await settled(job, timeoutMs);
    if (done.state === 'failed')
      throw new Error(`job ${job.id} failed: ${done.job.failedReason}\n${worker?.output() ?? ''}`);
    return done.job;
  };

  /** Resolves once the worker reports the training phase (it reports each phase as it enters it). */
  const training = (job: Job) =>
    waitFor(
      `job ${job.id} to be training`,
      async () => {
        const progress = (await queue.getJob(job.id))!.progress() as TrainingJobProgress | number;
        return typeof progress === 'object' && progress.phase === 'training' ? true : undefined;
      },
      30_000,
      50,
    );

  /** The tables this file fills, and every queue key (jobs, schedule, cancellation flags). */
  const cleanUp = async () => {
    await app
      .get(DataSource)
      .query('TRUNCATE model_versions, rollout_events, events, user_features, item_features RESTART IDENTITY CASCADE');
    const redis = app.get<Redis>(REDIS);
    const keys = await redis.keys(`${QUEUE_PREFIX}:*`);
    if (keys.length > 0) await redis.del(...keys);
  };

  const versionsOf = async (jobId: Job['id']) =>
    dataSource.getRepository(ModelVersionEntity).count({ where: { trainingJobId: String(jobId) } });

  beforeAll(async () => {
    app = await createApiApp({ ADMIN_TOKEN: TOKEN, RETRAIN_ENABLED: 'false' });
    dataSource = app.get(DataSource);
    registry = app.get(ModelRegistryService);
    const config = app.get<AppConfig>(APP_CONFIG);
    await cleanUp();
    queue = new Bull(TRAINING_QUEUE, { redis: config.REDIS_URL, prefix: QUEUE_PREFIX });

    // Ten days of a realistic log: users and items with latent tastes, correlated click / like / watch time.
    data = generateInteractions({ users: 400, items: 200, impressions: 5000, seed: 11, start: START, days: DAYS });
    await app.get(FeatureRepository).upsert('user', data.users);
    await app.get(FeatureRepository).upsert('item', data.items);
    await app.get(EventRepository).insertNew(
      data.events.map((e) => ({
        ...e,
        labels: { ...e.labels },
        requestId: null,
        modelVersionId: null,
        context: null,
      })),
    );

    // Production: the same spec, trained briefly on the first days only, registered and promoted through the admin API.
    await initBackend(config.MMOE_BACKEND);
    const early = new RawTable(parseModelSpec({ ...SPEC, training: { ...SPEC.training, epochs: 1 } }));
    for (const record of [...interactionsToRecords(data)].slice(0, 800)) early.add(record);
    const { model } = await MultiTaskModel.train(early.spec, early);
    const artifact = model.toArtifact().toString('base64');
    model.dispose();
    const registered = await app.inject({ method: 'POST', url: '/admin/models', headers: auth, payload: { artifact } });
    productionId = registered.json().id;
    await app.inject({
      method: 'POST',
      url: `/admin/models/${productionId}/canary`,
      headers: auth,
      payload: { percent: 10 },
    });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/admin/models/promote',
          headers: auth,
          payload: { versionId: productionId },
        })
      ).statusCode,
    ).toBe(200);
    await app.get(ModelLifecycleService).refresh();

    worker = await startWorker();
  });

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await queue?.close();
    if (app) await cleanUp();
    await app?.close();
  });

  it('trains a candidate from logged events, judges it against production on later events, canaries it, and the API serves it', async () => {
    const started = Date.now();
    // No spec: production's, trained for longer.
    const job = await enqueue({ source: EVENTS_WINDOW, overrides: { epochs: 3 } });
    const done = await finished(job, 60_000);
    const result = done.returnvalue as TrainingJobResult;

    // Bull's lock renewal kept up with training: it never stalled.
    expect(worker!.output()).not.toContain('had stalled');

    const version = (await registry.findByTrainingJob(String(job.id)))!;
    // Production's spec as it is: the job's 3 epochs are the job's, recorded beside it, so that a later job taking
    // this version's spec does not inherit them.
    const productionSpec = { ...SPEC, training: { ...SPEC.training, epochs: 1 } };
    expect(version).toMatchObject({ id: result.versionId, parentVersionId: productionId, spec: productionSpec });
    const stored = MultiTaskModel.fromArtifact((await registry.findArtifact(version.id))!.artifact);
    expect(stored.spec).toEqual(version.spec);
    stored.dispose();
    const metrics = version.metrics as {
      tasks: Record<string, Record<string, number>>;
      productionHoldout: HoldoutComparison;
      examples: number;
      training: { examplesPerSec: number; overrides: object; history: unknown[] };
      int8: { auc: Record<string, { fp32: number; int8: number }>; maxAucDrop: number; eligible: boolean };
    };
    console.log(
      `events job: ${result.examples.train} rows × 3 epochs in ${result.trainingSeconds.toFixed(1)} s of training ` +
        `(${Math.round(metrics.training.examplesPerSec)} examples/s), ${((Date.now() - started) / 1000).toFixed(1)} s from queued to done`,
    );
    expect(metrics.training.overrides).toEqual({ epochs: 3 });
    expect(metrics.training.history).toHaveLength(3);
    expect(metrics.productionHoldout.versionId).toBe(productionId);
    expect(metrics.tasks.click.auc).toBeGreaterThan(0.6);
    // Events are grouped by user_id by default: GAUC per binary task, over the users with both classes.
    expect(metrics.tasks.click.gauc).toBeGreaterThan(0.5);
    expect(metrics.tasks.click.gaucGroups).toBeGreaterThan(10);
    expect(metrics.productionHoldout.tasks.click.gauc).toEqual(expect.any(Number));
    // The int8 serving graph judged against fp32 on the same held-out events (what POST …/precision int8 requires).
    expect(metrics.int8).toMatchObject({ tolerance: 0.001, rows: result.examples.holdout });
    expect(Object.keys(metrics.int8.auc).sort()).toEqual(['click', 'like']); // jsonb reorders keys
    expect(metrics.int8.eligible).toBe(metrics.int8.maxAucDrop <= 0.001);
    // INT8_SERVING=auto serves int8 only a version whose check judged every task: watch_time, a regression task, has
    // no AUC to judge it by, so this one starts in fp32 whatever its binary tasks' check said.
    expect(version.servingPrecision).toBe('fp32');
    expect(result.examples.train + result.examples.holdout).toBe(5000);
    expect(metrics.examples).toBe(result.examples.holdout);
    // The later fifth of the ten days is held out; with the daily cycle that is about a fifth of the events.
    expect(result.examples.holdout).toBeGreaterThan(800);
    expect(result.examples.holdout).toBeLessThan(1200);
    expect(result.candidate).toEqual(metrics.tasks);
    expect(result.production).toEqual(metrics.productionHoldout.tasks);

    // An uploaded production records no trainedTo: both are compared on the whole slice.
    expect(metrics.productionHoldout.unseen).toBeUndefined();
    // Ten days of data beat production's first days on the later slice: the gate (by default config) canaries it.
    const config = app.get<AppConfig>(APP_CONFIG);
    const expected = decideRollout(
      SPEC.tasks,
      metrics.tasks,
      { kind: 'evaluated', versionId: productionId, tasks: metrics.productionHoldout.tasks },
      {
        autoCanary: config.AUTO_CANARY,
        binaryMetric: config.TRAINING_GATE_METRIC,
        aucTolerance: config.TRAINING_AUC_TOLERANCE,
        rmseTolerance: config.TRAINING_RMSE_TOLERANCE,
        minLabels: config.TRAINING_GATE_MIN_LABELS,
      },
    );
    expect(expected.decision).toBe('canary');
    expect({ decision: result.decision, reason: result.reason }).toEqual(expected);
    expect(version).toMatchObject({ status: 'canary', canaryPercent: config.CANARY_PERCENT });
    const history = (await registry.history(10, 0)).items;
    expect(history.filter((e) => e.toVersionId === version.id).map((e) => [e.action, e.actor])).toEqual([
      ['canary', 'worker'],
      ['register', 'worker'],
    ]);

    // Its training report: rendered from what the version stores, behind the admin token.
    const report = await app.inject({ method: 'GET', url: `/admin/models/${version.id}/report`, headers: auth });
    expect(report.statusCode).toBe(200);
    expect(report.headers['content-type']).toMatch(/^text\/html/);
    expect(report.headers['content-security-policy']).toBe(REPORT_CONTENT_SECURITY_POLICY);
    expect(report.body).toContain(`production v${productionId}`);
    expect(report.body.match(/<svg class="chart"/g)!.length).toBeGreaterThanOrEqual(5);
    expect((await app.inject({ method: 'GET', url: `/admin/models/${version.id}/report` })).statusCode).toBe(401);
    // A miss: its JSON body was labelled HTML first, which Nest's adapter corrected with a warning at every miss.
    const warn = jest.spyOn(Logger, 'warn');
    const uploaded = await app.inject({ method: 'GET', url: `/admin/models/${productionId}/report`, headers: auth });
    expect(uploaded.statusCode).toBe(404);
    expect(uploaded.headers['content-type']).toMatch(/^application\/json/);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();

    // Every user on the new version: it serves.
    await registry.setCanary(version.id, 100, undefined, 'test');
    await app.get(ModelLifecycleService).refresh();
    const scored = await app.inject({
      method: 'POST',
      url: '/v1/score',
      payload: { userId: 'u-1', itemIds: ['i-1', 'i-2', 'i-3'] },
    });
    expect(scored.statusCode).toBe(200);
    expect(scored.json()).toMatchObject({ modelVersion: version.id, modelRole: 'canary' });
    expect(Object.keys(scored.json().items[0].scores)).toEqual(['click', 'like', 'watch_time']);
  });

  it('trains from a CSV file split by row order, and fails a job that cannot succeed at once, without retries', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'worker-e2e-')), 'log.csv');
    const records = [...interactionsToRecords(data)];
    const columns = Object.keys(records[0]);
    // A list (the users' recent items) is one cell of values separated by the spec's separator, "|".
    const cell = (v: unknown) => (Array.isArray(v) ? v.join('|') : String(v));
    writeFileSync(
      path,
      [columns.join(','), ...records.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\n'),
    );
    const csvJob = await enqueue({ source: { kind: 'csv', path }, spec: SPEC, holdoutFraction: 0.25 });
    const empty = await enqueue({
      source: { kind: 'events', from: '2030-01-01T00:00:00Z', to: '2030-01-02T00:00:00Z' },
    });

    const result = (await finished(csvJob, 60_000)).returnvalue as TrainingJobResult;
    expect(result.examples).toEqual({ train: 3750, holdout: 1250 });
    expect((await registry.get(result.versionId)).metrics).toMatchObject({
      dataset: { source: { kind: 'csv', path }, holdoutStart: 3751 },
    });

    const { state, job: failed } = await settled(empty, 30_000);
    expect(state).toBe('failed');
    expect(failed.failedReason).toBe('too little data: 0 usable rows, at least 200 are needed (TRAINING_MIN_ROWS)');
    expect(failed.attemptsMade).toBe(1);
    expect(await versionsOf(empty.id)).toBe(0);
  });

  it('fails a job that breaks the queue contract at once, unretried, naming the field, whoever queued it', async () => {
    // Straight into the queue, as Bull Board or another client would add them: not through the admin API's checks.
    const add = (name: string, data: unknown) =>
      queue.add(name, data as TrainingJobPayload, { ...TRAINING_JOB_OPTIONS, jobId: randomUUID() });
    const malformed = [
      [await add(TrainingJobName.Train, {}), /^source: .*; requestedBy: /],
      [await add(TrainingJobName.Train, { source: { kind: 'csv' }, requestedBy: 'x' }), /^source\.path: /],
      [await add(TrainingJobName.ScheduledRetrain, { windowDays: -1 }), /^windowDays: /],
      [await add('retrain-everything', { windowDays: 1 }), /^name: the training queue has no job named/],
    ] as const;
    for (const [job, reason] of malformed) {
      const { state, job: failed } = await settled(job, 30_000);
      expect({ state, attemptsMade: failed.attemptsMade }).toEqual({ state: 'failed', attemptsMade: 1 });
      expect(failed.failedReason).toMatch(reason);
    }
  });

  it('stops a running job that is cancelled, registering nothing and not retrying it', async () => {
    // Many epochs: long enough to be cancelled mid-training on any machine (it stops at the next check, within a second).
    const job = await enqueue({ source: EVENTS_WINDOW, spec: SPEC, overrides: { epochs: 20, seed: 4 } });
    await training(job);
    await app.get(TrainingCancellationRepository).request(String(job.id));
    const { state, job: stopped } = await settled(job, 30_000);
    expect([state, stopped.failedReason, stopped.attemptsMade]).toEqual(['failed', `job ${job.id}: cancelled`, 1]);
    expect(await versionsOf(job.id)).toBe(0);
  });

  it('finishes the running job on SIGTERM before it exits', async () => {
    const job = await enqueue({ source: EVENTS_WINDOW, spec: SPEC, overrides: { epochs: 4, seed: 2 } });
    await training(job);
    const signalled = Date.now();
    expect(await worker!.stop('SIGTERM')).toEqual({ code: null, signal: 'SIGTERM' });
    const done = await finished(job, 0);
    expect(done.finishedOn).toBeGreaterThan(signalled);
    expect(worker!.output()).toContain('stopping: no new jobs; waiting for the running ones to finish');
    expect(await versionsOf(job.id)).toBe(1);
  });

  it('survives a SIGKILL of its worker mid-training: no partial version, and the job completes on a restarted worker', async () => {
    worker = await startWorker();
    const job = await enqueue({ source: EVENTS_WINDOW, spec: SPEC, overrides: { epochs: 4, seed: 3 } });
    await training(job);
    const killed = await worker.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    expect(await (await queue.getJob(job.id))!.getState()).toBe('active');
    expect(await versionsOf(job.id)).toBe(0);

    const restarted = Date.now();
    worker = await startWorker();
    const done = await finished(job, 60_000);
    console.log(
      `killed job: completed ${((Date.now() - restarted) / 1000).toFixed(1)} s after the restart (${(done.returnvalue as TrainingJobResult).trainingSeconds.toFixed(1)} s training)`,
    );
    // Taken over once, after the kill, and not again.
    expect(worker.output().split(`job ${job.id} had stalled`)).toHaveLength(2);
    expect(await versionsOf(job.id)).toBe(1);
    expect((done.returnvalue as TrainingJobResult).versionId).toBe(
      (await registry.findByTrainingJob(String(job.id)))!.id,
    );
  });
});
