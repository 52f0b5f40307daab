import { randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Bull, { type Job, type JobOptions, type Queue } from 'bull';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { EventRepository, FeatureRepository } from '@app/db';
import {
  generateInteractions,
  initBackend,
  MultiTaskModel,
  MultiTaskNetwork,
  parseModelSpec,
  type VocabularyGrowth,
} from '@app/mmoe';
import {
  QUEUE_PREFIX,
  TRAINING_JOB_OPTIONS,
  TRAINING_QUEUE,
  TrainingJobName,
  type TrainingJobResult,
} from '@app/queue';
import { REDIS } from '@app/redis';
import { ModelRegistryService, type DatasetRecord, type TrainingRecord } from '@app/registry';

import { ModelLifecycleService } from '../apps/api/src/models/model-lifecycle.service';
import { createApiApp } from './api-app.factory';
import { startWorker, type WorkerProcess } from './fixtures/app.process';

const TOKEN = 'warm-start-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const DAY_MS = 86_400_000;
const START = Date.parse('2025-02-01T00:00:00Z');
const day = (d: number) => new Date(START + d * DAY_MS).toISOString();
/** Items i-240 … i-299 are released on day 5: the first model never sees them. */
const RELEASE_DAY = 5;
const FIRST_NEW_ITEM = 240;

const SPEC = parseModelSpec({
  features: [
    { name: 'user_country', type: 'categorical', embeddingDim: 4 },
    { name: 'user_activity', type: 'numeric' },
    { name: 'item_id', type: 'categorical', embeddingDim: 4 },
    { name: 'item_genre', type: 'categorical', embeddingDim: 4 },
    { name: 'item_price', type: 'numeric' },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'like', label: 'like', type: 'binary', weight: 0.5 },
  ],
  model: { architecture: 'mmoe', experts: 3, expertUnits: [12], towerUnits: [6] },
  training: { epochs: 2, batchSize: 128, learningRate: 0.01, seed: 1, earlyStoppingPatience: 0 },
});

describe('warm-start incremental training (e2e: real Postgres, Redis and a worker process)', () => {
  let app: NestFastifyApplication;
  let registry: ModelRegistryService;
  let queue: Queue;
  let worker: WorkerProcess | undefined;

  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: auth, payload });

  /** A job queued through the admin API, once it has completed (or its failure, when `fails`). */
  const run = async (payload: object, fails = false): Promise<Job> => {
    const created = await post('/admin/training-jobs', payload);
    expect(created.statusCode).toBe(201);
    return settled(created.json().id as string, fails);
  };

  /**
   * The job once it has completed (or failed, when `fails`), fetched after its state says so: a job fetched before it
   * finished holds no result even if its state, read next, is already 'completed'.
   */
  const settled = async (id: Job['id'], fails = false): Promise<Job> => {
    for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
      const state = await (await queue.getJob(id))!.getState();
      if (state === 'completed' || state === 'failed') {
        const job = (await queue.getJob(id))!;
        if ((state === 'failed') !== fails)
          throw new Error(`job ${id} ${state}: ${job.failedReason ?? ''}\n${worker?.output() ?? ''}`);
        return job;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`job ${id} did not finish\n${worker?.output() ?? ''}`);
  };

  const cleanUp = async () => {
    await app
      .get(DataSource)
      .query('TRUNCATE model_versions, rollout_events, events, user_features, item_features RESTART IDENTITY CASCADE');
    const redis = app.get<Redis>(REDIS);
    const keys = await redis.keys(`${QUEUE_PREFIX}:*`);
    if (keys.length > 0) await redis.del(...keys);
  };

  beforeAll(async () => {
    app = await createApiApp({ ADMIN_TOKEN: TOKEN, RETRAIN_ENABLED: 'false' });
    registry = app.get(ModelRegistryService);
    const config = app.get<AppConfig>(APP_CONFIG);
    await cleanUp();
    queue = new Bull(TRAINING_QUEUE, { redis: config.REDIS_URL, prefix: QUEUE_PREFIX });
    await initBackend(config.MMOE_BACKEND);

    const data = generateInteractions({
      users: 300,
      items: 300,
      impressions: 7000,
      seed: 5,
      start: new Date(START),
      days: 7,
    });
    const released = (itemId: string, at: Date) =>
      Number(itemId.slice(2)) < FIRST_NEW_ITEM || at.getTime() >= START + RELEASE_DAY * DAY_MS;
    await app.get(FeatureRepository).upsert('user', data.users);
    await app.get(FeatureRepository).upsert('item', data.items);
    await app
      .get(EventRepository)
      .insertNew(
        data.events
          .filter((e) => released(e.itemId, e.occurredAt))
          .map((e) => ({ ...e, labels: { ...e.labels }, requestId: null, modelVersionId: null, context: null })),
      );
    worker = await startWorker();
  });

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await queue?.close();
    if (app) await cleanUp();
    await app?.close();
  });

  it('warm-starts from production on the events since its data ended; a new item gets a learnt row, the parent is untouched', async () => {
    // Production: a full training on the first five days, promoted.
    const first = await run({ source: { kind: 'events', from: day(0), to: day(RELEASE_DAY) }, spec: SPEC });
    const parentId = (first.returnvalue as TrainingJobResult).versionId;
    await registry.setCanary(parentId, 10, undefined, 'test');
    await registry.promote(parentId, undefined, 'test');
    const parentBefore = await registry.get(parentId);
    // Posted after the parent read its events, into the time it trained on: late, for its child to train on.
    await app.get(DataSource).query(
      `INSERT INTO events (event_id, user_id, item_id, labels, occurred_at)
       SELECT event_id || '-late', user_id, item_id, labels, occurred_at FROM events
       WHERE occurred_at < $1 ORDER BY event_id LIMIT 1`,
      [day(1)],
    );

    // An incremental job: days 5 to 7, the late event, a fifth as many replayed events from days 0 to 5.
    const job = await run({
      warmStart: { from: 'production' },
      source: { kind: 'incremental', to: day(7), replay: 0.2 },
      overrides: { epochs: 1 },
    });
    const result = job.returnvalue as TrainingJobResult;
    const version = await registry.get(result.versionId);
    expect(version.parentVersionId).toBe(parentId);
    const metrics = version.metrics as {
      dataset: Required<
        Pick<DatasetRecord, 'window' | 'trainedTo' | 'historyFrom' | 'replay' | 'late' | 'snapshot' | 'holdoutStart'>
      >;
      training: TrainingRecord & { warmStart: { parentVersionId: number; vocabularies: VocabularyGrowth[] } };
      productionHoldout: { versionId: number };
    };
    // Lineage: the parent, the window, the replay and the rows. The parent, a full retrain, was refitted on its
    // held-out events after the gate (TRAINING_REFIT=full), so its training data ends at its window's end, where its
    // child's window starts. The child, incremental, is not refitted: its own child starts at its held-out events.
    const parentData = parentBefore.metrics.dataset!;
    expect(Date.parse(parentData.holdoutStart as string)).toBeLessThan(START + RELEASE_DAY * DAY_MS);
    expect(parentData.trainedTo).toBe(day(RELEASE_DAY));
    expect(parentBefore.metrics.training!.refit).toMatchObject({
      rows: parentBefore.metrics.examples,
      epochs: 1,
      optimizer: 'continued',
    });
    expect(metrics.dataset.window).toEqual({ from: day(RELEASE_DAY), to: day(7) });
    expect(metrics.dataset.trainedTo).toBe(metrics.dataset.holdoutStart);
    expect(metrics.training.refit).toBeUndefined();
    // Every row trained on, the validation share too: the child starts where this job's data ends.
    expect(metrics.training.examplesTrained).toBe(metrics.training.rows);
    // Replayed from the lineage's history (the parent's window start), up to the new window.
    expect(metrics.dataset.historyFrom).toBe(day(0));
    expect(metrics.dataset.replay).toMatchObject({ from: day(0), to: parentData.trainedTo });
    // The late event, which the parent's recorded snapshot did not hold; the child records its own.
    expect(parentData.snapshot).toMatch(/^\d+:\d+:/);
    expect(metrics.dataset.late).toEqual({ from: day(0), to: parentData.trainedTo, rows: 1 });
    expect(metrics.dataset.snapshot).not.toBe(parentData.snapshot);
    const windowTrainRows = metrics.training.rows - metrics.dataset.replay.rows - metrics.dataset.late.rows;
    expect(metrics.dataset.replay.rows).toBe(Math.round(0.2 * windowTrainRows));
    expect(metrics.productionHoldout.versionId).toBe(parentId);
    const itemGrowth = metrics.training.warmStart.vocabularies.find((v) => v.feature === 'item_id')!;
    expect(metrics.training.warmStart.parentVersionId).toBe(parentId);
    expect(itemGrowth.added).toBeGreaterThan(30);
    expect(itemGrowth.overflow).toBe(0);

    // A new item: out of the parent's vocabulary, in the child's, after the parent's rows, and trained.
    const [parent, child] = await Promise.all(
      [parentId, version.id].map(async (id) =>
        MultiTaskModel.fromArtifact((await registry.findArtifact(id))!.artifact),
      ),
    );
    try {
      const column = child.network.preprocessing.categorical.findIndex((c) => c.name === 'item_id');
      const newItem = `i-${FIRST_NEW_ITEM}`;
      const rows = [parent, child].map((m) => m.encoder.encodeCategory(column, newItem));
      expect(rows[0]).toBe(0);
      expect(rows[1]).toBeGreaterThan(itemGrowth.before);
      // Its row is learnt: neither the out-of-vocabulary row nor the fresh value it was given before training.
      const dim = 4;
      const rowOf = (table: Float32Array, r: number) => Array.from(table.subarray(r * dim, (r + 1) * dim));
      const distance = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      const learnt = child.network.snapshot().get('embedding/item_id')!;
      const fresh = new MultiTaskNetwork(child.spec, child.network.preprocessing); // the same seed as the warm start
      const initial = fresh.snapshot().get('embedding/item_id')!;
      fresh.dispose();
      expect(learnt.length).toBe(initial.length);
      expect(distance(rowOf(learnt, rows[1]), rowOf(learnt, 0))).toBeGreaterThan(1e-3);
      expect(distance(rowOf(learnt, rows[1]), rowOf(initial, rows[1]))).toBeGreaterThan(1e-4);
      const records = (itemId: string) => [
        { user_country: 'US', user_activity: 3, item_id: itemId, item_genre: 'drama', item_price: 0 },
      ];
      const scoreOf = (itemId: string) => child.predictRecords(records(itemId)).scores[0][0];
      // Its own learnt row, not the out-of-vocabulary one: the score differs from an id never seen.
      expect(Math.abs(scoreOf(newItem) - scoreOf('never-seen'))).toBeGreaterThan(1e-4);
    } finally {
      parent.dispose();
      child.dispose();
    }

    // The API scores the new item with the new version.
    await registry.setCanary(version.id, 100, undefined, 'test');
    await app.get(ModelLifecycleService).refresh();
    const scored = await post('/v1/score', { userId: 'u-1', itemIds: [`i-${FIRST_NEW_ITEM}`, 'i-1'] });
    expect(scored.statusCode).toBe(200);
    expect(scored.json()).toMatchObject({ modelVersion: version.id });

    // The parent is as it was: status, artifact, metrics.
    expect(await registry.get(parentId)).toEqual(parentBefore);
  });

  it('refuses an incompatible spec at once, naming every difference: a 400, and a failed job with no version written', async () => {
    const production = (await registry.findServing()).production!;
    const versionsBefore = (await registry.history(100, 0)).items.length;
    const wider = { ...SPEC, model: { ...SPEC.model, expertUnits: [16] }, features: SPEC.features.slice(1) };
    const payload = { warmStart: { from: production.id }, spec: wider, source: { kind: 'incremental', to: day(7) } };
    const differences =
      'features: "user_country" is in the parent, not here; model.expertUnits is [12] in the parent, [16] here';
    const refused = await post('/admin/training-jobs', payload);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().errors).toEqual([
      { field: 'spec', message: `spec cannot warm-start from version ${production.id}: ${differences}` },
    ]);
    // Queued all the same (say production changed in between): the worker refuses it before reading any data.
    const queued = await queue.add(
      TrainingJobName.Train,
      { ...payload, requestedBy: 'test' },
      { ...TRAINING_JOB_OPTIONS, jobId: randomUUID() },
    );
    const job = await settled(queued.id, true);
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toBe(`the spec cannot warm-start from version ${production.id}: ${differences}`);
    expect((await registry.history(100, 0)).items).toHaveLength(versionsBefore);
  });

  it('runs the incremental cadence as the schedule fires it: gate, canary and rollout policy, each in the history', async () => {
    const { production, canary } = await registry.findServing();
    const policy = { confidence: 0.95, minEvents: 100, tolerance: 0.01 };
    // What Bull queues when the cadence's cron fires: its repeatable job's data.
    const fire = () =>
      queue.add(
        TrainingJobName.ScheduledIncremental,
        { replay: 0.1, epochs: 1, rolloutPolicy: policy },
        { ...TRAINING_JOB_OPTIONS, jobId: randomUUID() },
      );
    // While an earlier job's version is the canary, a run does not replace it: its own stays a candidate.
    expect(canary).toBeDefined();
    const held = (await settled((await fire()).id)).returnvalue as TrainingJobResult;
    expect(held.decision).toBe('candidate');
    expect(held.reason).toMatch(/^passed the gate \(.+\), but the canary was refused: /);
    expect(held.reason).toContain(
      `the canary was refused: version ${held.versionId} is a candidate; version ${canary!.id} is ` +
        'the canary, and a training job does not replace it',
    );
    // The version shows what came of its gate, not a canary decision beside its candidate status.
    expect((await registry.get(held.versionId)).metrics.gate).toEqual({ decision: 'candidate', reason: held.reason });
    expect((await registry.findServing()).canary?.id).toBe(canary!.id);
    await registry.archive(canary!.id, 'test');

    const fired = await fire();
    const job = await settled(fired.id);
    const result = job.returnvalue as TrainingJobResult;
    const version = await registry.get(result.versionId);
    expect(version).toMatchObject({ parentVersionId: production!.id, status: 'canary', rolloutPolicy: policy });
    expect(version.note).toBe(`trained by job ${fired.id} (schedule), warm-started from version ${production!.id}`);
    expect(result.decision).toBe('canary');
    const history = (await registry.history(20, 0)).items.filter((e) => e.toVersionId === version.id);
    expect(history.map((e) => [e.action, e.actor])).toEqual([
      ['policy', 'worker'],
      ['canary', 'worker'],
      ['register', 'worker'],
    ]);
  });

  it('answers 400 for a warm start that names no version or an incremental source without one', async () => {
    const noVersion = await post('/admin/training-jobs', {
      warmStart: { from: 9999 },
      source: { kind: 'incremental' },
    });
    expect(noVersion.statusCode).toBe(400);
    expect(noVersion.json().errors).toEqual([
      { field: 'warmStart.from', message: 'warmStart.from names no version (9999)' },
    ]);
    const noWarmStart = await post('/admin/training-jobs', { source: { kind: 'incremental' } });
    expect(noWarmStart.json().errors[0].field).toBe('warmStart');
    const bad = await post('/admin/training-jobs', {
      warmStart: { from: 'latest' },
      source: { kind: 'incremental', replay: 2 },
    });
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json()
        .errors.map((e: { field: string }) => e.field)
        .sort(),
    ).toEqual(['source.replay', 'warmStart.from']);
    // The field is named once, not under its parent's name again.
    expect(bad.json().errors).toContainEqual({
      field: 'warmStart.from',
      message: 'warmStart.from must be "production" or a version id',
    });
  });

  it('refuses a manual job on an empty window (400 naming source.to); a scheduled run skips it, in the history', async () => {
    const production = (await registry.findServing()).production!;
    const from = Date.parse(production.metrics.dataset!.trainedTo!);
    const to = new Date(from + 3_600_000);
    // An hour without events after production's training data.
    await app
      .get(DataSource)
      .query('DELETE FROM events WHERE occurred_at >= $1 AND occurred_at < $2', [new Date(from), to]);
    const window = { from: new Date(from).toISOString(), to: to.toISOString() };

    const refused = await post('/admin/training-jobs', {
      warmStart: { from: 'production' },
      source: { kind: 'incremental', to: window.to },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().errors).toEqual([
      {
        field: 'source.to',
        message: `source.to: no new events in the incremental window [${window.from}, ${window.to}): version ${production.id}'s training data ends at ${window.from}`,
      },
    ]);

    // The cadence fires as of the window's end: completed, nothing registered, a skip by the worker in the history.
    const versionsBefore = (await registry.list()).length;
    const fired = await queue.add(
      TrainingJobName.ScheduledIncremental,
      { replay: 0.1, epochs: 1 },
      // Bull reads `timestamp` (when the run was due) though its types omit it.
      { ...TRAINING_JOB_OPTIONS, jobId: randomUUID(), timestamp: to.getTime() } as JobOptions,
    );
    const job = await settled(fired.id);
    expect(job.attemptsMade).toBe(0);
    const reason = `source.to: no new events in the incremental window [${window.from}, ${window.to}) since version ${production.id}'s training data`;
    expect(job.returnvalue).toEqual({ skipped: { reason, parentVersionId: production.id, window } });
    expect(await registry.list()).toHaveLength(versionsBefore);
    const [latest] = (await registry.history(1, 0)).items;
    expect(latest).toMatchObject({
      action: 'skip',
      actor: 'worker',
      toVersionId: production.id,
      evidence: { skipped: { job: String(fired.id), reason, window } },
    });
    const listed = await app.inject({ method: 'GET', url: `/admin/training-jobs/${fired.id}`, headers: auth });
    expect(listed.json()).toMatchObject({ state: 'completed', result: null, skipped: { reason, window } });

    // A retried attempt (the first died after recording) records no second skip: it gets the first one back.
    const again = await registry.recordSkippedRun(production.id, { job: String(fired.id), reason, window }, 'worker');
    expect(again.id).toBe(latest.id);
    expect((await registry.history(1, 0)).items[0].id).toBe(latest.id);
    // And the database refuses a second one whatever writes it.
    await expect(
      app
        .get(DataSource)
        .query(
          `INSERT INTO rollout_events (action, actor, to_version_id, evidence) VALUES ('skip', 'worker', $1, $2)`,
          [production.id, { skipped: { job: String(fired.id) } }],
        ),
    ).rejects.toThrow(/rollout_events_skip_job/);

    // A quiet hour: three events, too few to train on. Skipped alike, not failed: the window grows until the next run.
    await app.get(DataSource).query(
      `INSERT INTO events (event_id, user_id, item_id, labels, occurred_at)
       SELECT event_id || '-quiet', user_id, item_id, labels, $1 FROM events ORDER BY event_id LIMIT 3`,
      [new Date(from + 60_000)],
    );
    const quiet = await queue.add(TrainingJobName.ScheduledIncremental, { replay: 0.1, epochs: 1 }, {
      ...TRAINING_JOB_OPTIONS,
      jobId: randomUUID(),
      timestamp: to.getTime(),
    } as JobOptions);
    const quietJob = await settled(quiet.id);
    expect(quietJob.attemptsMade).toBe(0);
    expect(quietJob.returnvalue.skipped.reason).toMatch(
      `source.to: too little in the incremental window [${window.from}, ${window.to}) since version ${production.id}'s ` +
        'training data to train on yet: too little data: ',
    );
    expect(await registry.list()).toHaveLength(versionsBefore);
  });
  it('serves a full retrain refitted on its held-out events (an item first seen there is learnt); refit: false does not', async () => {
    // Days 0 to 6: the held-out slice (the last fifth of the time) holds the items released on day 5, which the rows
    // trained on before the gate never saw.
    const source = { kind: 'events', from: day(0), to: day(6) };
    const invalid = await post('/admin/training-jobs', { source, spec: SPEC, refit: 'yes' });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().errors).toEqual([{ field: 'refit', message: 'refit must be a boolean value' }]);

    const [refitted, plain] = await Promise.all(
      [{}, { refit: false }].map(async (option) => {
        const job = await run({ source, spec: SPEC, ...option });
        return registry.get((job.returnvalue as TrainingJobResult).versionId);
      }),
    );
    // The new item shown most on day 5.
    const [{ item_id: newItem }] = await app.get(DataSource).query(
      `SELECT item_id FROM events WHERE occurred_at >= $1 AND occurred_at < $2 AND substr(item_id, 3)::int >= $3
       GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 1`,
      [day(RELEASE_DAY), day(6), FIRST_NEW_ITEM],
    );
    const rowOf = async (versionId: number) => {
      const model = MultiTaskModel.fromArtifact((await registry.findArtifact(versionId))!.artifact);
      try {
        const column = model.network.preprocessing.categorical.findIndex((c) => c.name === 'item_id');
        return model.encoder.encodeCategory(column, newItem);
      } finally {
        model.dispose();
      }
    };
    const holdoutStart = Date.parse(refitted.metrics.dataset!.holdoutStart as string);
    expect(holdoutStart).toBeLessThan(START + RELEASE_DAY * DAY_MS);

    // Refitted: its weights learnt the slice (the new items got rows), its data ends at the window's end, and its
    // metrics are the gate's, measured on the slice before the refit.
    const refit = refitted.metrics.training!.refit!;
    expect(refit).toMatchObject({ rows: refitted.metrics.examples, epochs: 1, optimizer: 'continued' });
    expect(refit.vocabularies!.find((v) => v.feature === 'item_id')!.added).toBeGreaterThan(0);
    expect(await rowOf(refitted.id)).toBeGreaterThan(0);
    expect(refitted.metrics.dataset!.trainedTo).toBe(day(6));
    expect(refitted.spec).toEqual(plain.spec); // the spec's epochs, not the refit's one

    // Not refitted: what the gate judged is what is served; the new item is out of vocabulary.
    expect(plain.metrics.training!.refit).toBeUndefined();
    expect(await rowOf(plain.id)).toBe(0);
    expect(plain.metrics.dataset!.trainedTo).toBe(plain.metrics.dataset!.holdoutStart);
  });
});
