import { getQueueToken } from '@nestjs/bull';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Queue } from 'bull';
import { DataSource } from 'typeorm';

import { TRAINING_QUEUE, TrainingCancellationRepository, TrainingJobName, TrainingScheduleService } from '@app/queue';

import { createApiApp } from './api-app.factory';
import { seedModelVersion, TINY_SPEC } from './fixtures/model.fixture';

const TOKEN = 'training-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const WINDOW = { kind: 'events', from: '2026-11-01T00:00:00Z', to: '2026-11-08T00:00:00Z' };

/** No worker runs here: queued jobs stay waiting, and the test moves them by hand where it needs another state. */
describe('training admin API (e2e)', () => {
  let app: NestFastifyApplication;
  let queue: Queue;
  let dataSource: DataSource;

  const post = (url: string, payload?: object, headers: Record<string, string> = auth) =>
    app.inject({ method: 'POST', url, headers, payload });
  const get = (url: string, headers: Record<string, string> = auth) => app.inject({ method: 'GET', url, headers });

  beforeAll(async () => {
    app = await createApiApp({ ADMIN_TOKEN: TOKEN });
    queue = app.get<Queue>(getQueueToken(TRAINING_QUEUE));
    dataSource = app.get(DataSource);
    await dataSource.query('TRUNCATE model_versions, rollout_events RESTART IDENTITY CASCADE');
    // A clean queue and the schedule as a first boot seeds it (queue.empty() would also drop the schedule's next run).
    await queue.obliterate({ force: true });
    await dataSource.query('DELETE FROM training_schedule; DELETE FROM incremental_schedule');
    await app.get(TrainingScheduleService).ensure();
  });

  afterAll(async () => {
    await queue.obliterate({ force: true });
    await dataSource.query('DELETE FROM training_schedule; DELETE FROM incremental_schedule');
    await app.close();
  });

  it.each([
    ['POST', '/admin/training-jobs'],
    ['GET', '/admin/training-jobs'],
    ['GET', '/admin/training-jobs/1'],
    ['POST', '/admin/training-jobs/1/cancel'],
    ['GET', '/admin/training-schedule'],
    ['PUT', '/admin/training-schedule'],
    ['POST', '/admin/training-schedule/pause'],
    ['POST', '/admin/training-schedule/resume'],
  ] as const)('%s %s needs the admin token', async (method, url) => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
      const response = await app.inject({ method, url, headers });
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="admin"/);
    }
  });

  describe('training jobs', () => {
    let id: string;

    it('queues a job: 201 with its id, waiting', async () => {
      const response = await post('/admin/training-jobs', {
        source: WINDOW,
        spec: TINY_SPEC,
        overrides: { epochs: 2 },
        holdoutFraction: 0.25,
        refit: false,
      });
      expect(response.statusCode).toBe(201);
      expect(response.json()).toEqual({ id: expect.any(String), state: 'waiting' });
      id = response.json().id;
      const job = await queue.getJob(id);
      expect(job?.name).toBe(TrainingJobName.Train);
      expect(job?.data).toEqual({
        source: { kind: 'events', from: '2026-11-01T00:00:00.000Z', to: '2026-11-08T00:00:00.000Z' },
        spec: expect.objectContaining({ tasks: expect.any(Array) }),
        overrides: { epochs: 2 },
        holdoutFraction: 0.25,
        refit: false,
        requestedBy: 'admin',
      });
    });

    it('shows a job: state, no progress yet, attempts, payload', async () => {
      const response = await get(`/admin/training-jobs/${id}`);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        id,
        name: 'train',
        state: 'waiting',
        payload: expect.objectContaining({ requestedBy: 'admin' }),
        progress: null,
        attempts: { made: 0, max: 3 },
        failedReason: null,
        result: null,
        skipped: null,
        cancelRequested: false,
        createdAt: expect.any(String),
        startedAt: null,
        finishedAt: null,
      });
      expect((await get('/admin/training-jobs/nope')).statusCode).toBe(404);
    });

    it('lists the recent jobs of every state, newest first, with the next scheduled run', async () => {
      const csv = await post('/admin/training-jobs', { source: { kind: 'csv', path: '/data/x.csv' }, spec: TINY_SPEC });
      expect(csv.statusCode).toBe(201);
      const response = await get('/admin/training-jobs');
      expect(response.statusCode).toBe(200);
      const jobs: { id: string; name: string; state: string }[] = response.json();
      const trains = jobs.filter((job) => job.name === 'train').map((job) => job.id);
      expect(trains).toEqual([csv.json().id, id]);
      // The API process registered the schedule at boot; its next run waits as a delayed job.
      expect(jobs).toContainEqual(expect.objectContaining({ name: 'scheduled-retrain', state: 'delayed' }));
      expect((await get('/admin/training-jobs?limit=1')).json()).toHaveLength(1);
      expect((await get('/admin/training-jobs?limit=0')).statusCode).toBe(400);
      await post(`/admin/training-jobs/${csv.json().id}/cancel`);
    });

    it.each([
      ['a missing source', {}, 'source'],
      ['an unknown source kind', { source: { kind: 'kafka' } }, 'source.kind'],
      ['a window that is not ISO 8601', { source: { ...WINDOW, from: 'yesterday' } }, 'source.from'],
      ['a window that ends before it starts', { source: { ...WINDOW, to: WINDOW.from } }, 'source.to'],
      // It would be recorded as where the version's data ends: the incremental cadence would wait until then.
      ['a window that ends in the future', { source: { ...WINDOW, to: '2099-01-01T00:00:00Z' } }, 'source.to'],
      [
        'an incremental window that ends in the future',
        { source: { kind: 'incremental', to: '2099-01-01T00:00:00Z' } },
        'source.to',
      ],
      ['a field of another source kind', { source: { ...WINDOW, path: '/x.csv' } }, 'source.path'],
      ['an invalid spec', { source: WINDOW, spec: { ...TINY_SPEC, tasks: [] } }, 'spec.tasks'],
      ['bad overrides', { source: WINDOW, spec: TINY_SPEC, overrides: { epochs: 0 } }, 'overrides.epochs'],
      ['a parent that does not exist', { source: WINDOW, parentVersionId: 999 }, 'parentVersionId'],
      ['no spec while nothing is in production', { source: WINDOW }, 'spec'],
      ['requestedBy, which the server sets', { source: WINDOW, spec: TINY_SPEC, requestedBy: 'me' }, 'requestedBy'],
      // Checked against the spec the job would train, before it trains and makes a canary no policy could decide.
      [
        'a rollout policy gating a task the spec lacks',
        { source: WINDOW, spec: TINY_SPEC, rolloutPolicy: { tasks: { purchase: {} } } },
        'rolloutPolicy.tasks.purchase',
      ],
      [
        'a rollout policy gating a regression task',
        { source: WINDOW, spec: TINY_SPEC, rolloutPolicy: { tasks: { watch_time: {} } } },
        'rolloutPolicy.tasks.watch_time',
      ],
    ])('400s on %s, naming the field', async (_, payload, field) => {
      const response = await post('/admin/training-jobs', payload);
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toContainEqual(expect.objectContaining({ field }));
    });

    it("takes production's spec when none is given, and checks a rollout policy against it", async () => {
      await seedModelVersion(dataSource, 'production');
      const response = await post('/admin/training-jobs', { source: WINDOW });
      expect(response.statusCode).toBe(201);
      await post(`/admin/training-jobs/${response.json().id}/cancel`);
      const refused = await post('/admin/training-jobs', {
        source: WINDOW,
        rolloutPolicy: { tasks: { purchase: {} } },
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().errors).toContainEqual(expect.objectContaining({ field: 'rolloutPolicy.tasks.purchase' }));
      const gated = await post('/admin/training-jobs', { source: WINDOW, rolloutPolicy: { tasks: { like: {} } } });
      expect(gated.statusCode).toBe(201);
      await post(`/admin/training-jobs/${gated.json().id}/cancel`);
    });

    it('cancels a waiting job by removing it', async () => {
      const response = await post(`/admin/training-jobs/${id}/cancel`);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ id, state: 'removed' });
      expect((await get(`/admin/training-jobs/${id}`)).statusCode).toBe(404);
      expect((await post(`/admin/training-jobs/${id}/cancel`)).statusCode).toBe(404);
    });

    it('cancels a running job by flagging it for its worker; a finished job cannot be cancelled', async () => {
      const created = (await post('/admin/training-jobs', { source: WINDOW, spec: TINY_SPEC })).json().id as string;
      // Take the job as a worker would: it becomes active, locked by this queue object.
      const job = await queue.getNextJob();
      expect(job?.id).toBe(created);

      const response = await post(`/admin/training-jobs/${created}/cancel`);
      expect(response.json()).toEqual({ id: created, state: 'cancelling' });
      await expect(app.get(TrainingCancellationRepository).isCancelled(created)).resolves.toBe(true);
      expect((await get(`/admin/training-jobs/${created}`)).json()).toMatchObject({
        state: 'active',
        cancelRequested: true,
      });

      // As the worker ends a cancelled job: failed at once, no retry.
      job!.discard();
      await job!.moveToFailed({ message: 'cancelled' }, true);
      const again = await post(`/admin/training-jobs/${created}/cancel`);
      expect(again.statusCode).toBe(409);
      expect(again.json().message).toBe(`training job ${created} has already failed`);
      expect((await get(`/admin/training-jobs/${created}`)).json()).toMatchObject({
        state: 'failed',
        failedReason: 'cancelled',
      });
    });

    it("refuses to cancel the schedule's next run (that would end the schedule)", async () => {
      const jobs: { id: string; name: string }[] = (await get('/admin/training-jobs')).json();
      const scheduled = jobs.find((job) => job.name === 'scheduled-retrain')!;
      const response = await post(`/admin/training-jobs/${scheduled.id}/cancel`);
      expect(response.statusCode).toBe(409);
      expect(response.json().message).toMatch(/pause the schedule instead/);
    });
  });

  describe('training schedule', () => {
    const repeatables = async () =>
      (await queue.getRepeatableJobs()).filter((job) => job.name === TrainingJobName.ScheduledRetrain);

    it('reads the schedule seeded from the configuration', async () => {
      const response = await get('/admin/training-schedule');
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        cron: '0 3 * * *',
        timezone: 'UTC',
        windowDays: 7,
        warmStart: false,
        epochs: null,
        paused: false,
        nextRunAt: expect.stringMatching(/T03:00:00\.000Z$/),
        rolloutPolicy: null,
        lastRun: null, // no scheduled run has finished (the jobs above are manual ones)
        updatedAt: expect.any(String),
        updatedBy: 'config',
        incremental: {
          cron: '0 * * * *',
          timezone: 'UTC',
          replay: 0.2,
          epochs: 1,
          paused: true,
          nextRunAt: null,
          rolloutPolicy: null,
          lastRun: null,
          updatedAt: expect.any(String),
          updatedBy: 'config',
        },
      });
    });

    it.each([['not a cron'], ['61 * * * *'], [''], ['* * * * * * *'], ['0 3 * *'], ['7']])(
      '400s on the cron %j, naming cron',
      async (cron) => {
        const response = await app.inject({
          method: 'PUT',
          url: '/admin/training-schedule',
          headers: auth,
          payload: { cron },
        });
        expect(response.statusCode).toBe(400);
        expect(response.json().errors).toEqual([expect.objectContaining({ field: 'cron' })]);
      },
    );

    it.each([
      ['/admin/training-schedule', '* * * * * *', 1],
      ['/admin/training-schedule/incremental', '*/20 * * * * *', 20],
    ])('400s on %s with the cron %j, runs %i s apart: below SCHEDULE_MIN_INTERVAL_SECONDS', async (url, cron, gap) => {
      const response = await app.inject({ method: 'PUT', url, headers: auth, payload: { cron } });
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toEqual([
        { field: 'cron', message: expect.stringMatching(new RegExp(`^cron runs ${gap} s apart .*minimum of 60 s`)) },
      ]);
    });

    it('changes the cron and the window: one repeatable job, re-registered', async () => {
      const response = await app.inject({
        method: 'PUT',
        url: '/admin/training-schedule',
        headers: auth,
        payload: { cron: ' */15\t* * *  *\n', windowDays: 3 }, // stored in one form: single spaces
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ cron: '*/15 * * * *', windowDays: 3, paused: false, updatedBy: 'admin' });
      expect(await repeatables()).toEqual([expect.objectContaining({ cron: '*/15 * * * *', tz: 'UTC' })]);
      const next = (await queue.getDelayed()).find((job) => job.name === TrainingJobName.ScheduledRetrain);
      expect(next?.data).toEqual({ windowDays: 3 });
    });

    it("warm-starts the full retrain for one epoch, in its run's data; null epochs is the spec's again", async () => {
      const put = (payload: object) =>
        app.inject({ method: 'PUT', url: '/admin/training-schedule', headers: auth, payload });
      const warm = await put({ cron: '*/15 * * * *', warmStart: true, epochs: 1 });
      expect(warm.statusCode).toBe(200);
      expect(warm.json()).toMatchObject({ windowDays: 3, warmStart: true, epochs: 1 });
      const next = async () =>
        (await queue.getDelayed()).filter((job) => job.name === TrainingJobName.ScheduledRetrain).map((j) => j.data);
      expect(await next()).toEqual([{ windowDays: 3, warmStart: true, epochs: 1 }]);
      // Left out, they are unchanged.
      expect((await put({ cron: '*/20 * * * *' })).json()).toMatchObject({ warmStart: true, epochs: 1 });
      const back = await put({ cron: '*/15 * * * *', warmStart: false, epochs: null });
      expect(back.json()).toMatchObject({ warmStart: false, epochs: null });
      expect(await next()).toEqual([{ windowDays: 3 }]);
    });

    it('pauses and resumes; twice is a conflict', async () => {
      const paused = await post('/admin/training-schedule/pause');
      expect(paused.statusCode).toBe(200);
      expect(paused.json()).toMatchObject({ paused: true, nextRunAt: null });
      expect(await repeatables()).toEqual([]);
      expect((await post('/admin/training-schedule/pause')).statusCode).toBe(409);

      const resumed = await post('/admin/training-schedule/resume');
      expect(resumed.json()).toMatchObject({ paused: false, cron: '*/15 * * * *', nextRunAt: expect.any(String) });
      expect(await repeatables()).toHaveLength(1);
      expect((await post('/admin/training-schedule/resume')).statusCode).toBe(409);
    });

    it('runs the incremental cadence beside the full one, each editable on its own, with a rollout policy', async () => {
      const incremental = async () =>
        (await queue.getRepeatableJobs()).filter((job) => job.name === TrainingJobName.ScheduledIncremental);
      expect((await post('/admin/training-schedule/incremental/resume')).statusCode).toBe(200);
      const given = { confidence: 0.9, minEvents: 500, tolerance: 0.02 };
      // As stored and carried: with the defaults of the fields not given.
      const policy = { ...given, minUsers: 100, maxHours: 168 };
      const response = await app.inject({
        method: 'PUT',
        url: '/admin/training-schedule/incremental',
        headers: auth,
        payload: { cron: '30 * * * *', replay: 0.1, epochs: 2, rolloutPolicy: given },
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        cron: '*/15 * * * *',
        rolloutPolicy: null,
        incremental: { cron: '30 * * * *', replay: 0.1, epochs: 2, paused: false, rolloutPolicy: policy },
      });
      expect(await incremental()).toEqual([expect.objectContaining({ cron: '30 * * * *', tz: 'UTC' })]);
      expect(await repeatables()).toHaveLength(1); // the full cadence's job is still there, alone under its id
      const next = (await queue.getDelayed()).find((job) => job.name === TrainingJobName.ScheduledIncremental);
      expect(next?.data).toEqual({ replay: 0.1, epochs: 2, rolloutPolicy: policy });

      const bad = await app.inject({
        method: 'PUT',
        url: '/admin/training-schedule/incremental',
        headers: auth,
        payload: { cron: '0 * * * *', replay: 2, rolloutPolicy: { confidence: 2 } },
      });
      expect(bad.statusCode).toBe(400);
      expect(
        bad
          .json()
          .errors.map((e: { field: string }) => e.field)
          .sort(),
      ).toEqual(['replay', 'rolloutPolicy.confidence']);
      // Against production's spec, which the runs train: a task it lacks would be refused only after a run's canary.
      for (const url of ['/admin/training-schedule', '/admin/training-schedule/incremental']) {
        const payload = { cron: '0 * * * *', rolloutPolicy: { tasks: { purchase: {} } } };
        const unknownTask = await app.inject({ method: 'PUT', url, headers: auth, payload });
        expect(unknownTask.statusCode).toBe(400);
        expect(unknownTask.json().errors).toEqual([expect.objectContaining({ field: 'rolloutPolicy.tasks.purchase' })]);
      }
      const paused = await post('/admin/training-schedule/incremental/pause');
      expect(paused.json()).toMatchObject({ paused: false, incremental: { paused: true, nextRunAt: null } });
      expect(await incremental()).toEqual([]);
      expect((await post('/admin/training-schedule/incremental/pause')).statusCode).toBe(409);
    });
  });

  describe('Bull Board at /admin/queues', () => {
    it('401s without the token, with a Basic challenge so that a browser asks for it', async () => {
      for (const authorization of [
        undefined,
        'Bearer wrong',
        `Basic ${Buffer.from('admin:wrong').toString('base64')}`,
      ]) {
        const response = await app.inject({
          method: 'GET',
          url: '/admin/queues',
          headers: authorization ? { authorization } : {},
        });
        expect(response.statusCode).toBe(401);
        expect(response.headers['www-authenticate']).toBe('Basic realm="admin", charset="UTF-8"');
      }
      for (const url of ['/admin/queues/api/queues', '/admin/queues/static/favicon.ico']) {
        expect((await app.inject({ method: 'GET', url })).statusCode).toBe(401);
      }
    });

    it('serves the board and its API with a bearer token, or Basic with the token as password', async () => {
      const page = await get('/admin/queues');
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      const basic = { authorization: `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}` };
      expect((await get('/admin/queues', basic)).statusCode).toBe(200);
      const api = await get('/admin/queues/api/queues', basic);
      expect(api.statusCode).toBe(200);
      expect(api.json().queues).toContainEqual(expect.objectContaining({ name: TRAINING_QUEUE }));
      // The page's assets: a browser sends the Basic credentials it was asked for with each of them.
      expect((await get('/admin/queues/static/favicon.ico', basic)).statusCode).toBe(200);
    });

    it('runs no completed job again (409), and cleans waiting jobs by the name its page uses', async () => {
      const board = (method: 'PUT', url: string) =>
        app.inject({ method, url: `/admin/queues/api/queues/${TRAINING_QUEUE}${url}`, headers: auth });
      // Taken as a worker would (first: the highest priority), and finished.
      await queue.add('board-probe', {}, { jobId: 'board-probe-done', priority: 1 });
      const done = (await queue.getNextJob())!;
      expect(done.id).toBe('board-probe-done');
      await done.moveToCompleted('done', true, false);
      const rerun = await board('PUT', `/${done.id}/retry`);
      expect(rerun.statusCode).toBe(409);
      expect(rerun.json().message).toMatch(/a completed training job is not run again/);
      expect(await done.isCompleted()).toBe(true);
      // The page's "waiting" is Bull's "wait" (Bull threw on the other name: a 500).
      expect((await board('PUT', '/clean/waiting')).statusCode).toBeLessThan(300);
    });
  });
});
