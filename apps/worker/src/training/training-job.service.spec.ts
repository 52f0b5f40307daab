import { Logger } from '@nestjs/common';
import type { Job } from 'bull';

import { ConflictError, InvalidFieldsError } from '@app/common';
import { loadConfig } from '@app/config';
import { parseModelSpec, type MultiTaskModel } from '@app/mmoe';
import { TrainingJobName, type TrainingJobResult } from '@app/queue';
import { DEFAULT_ROLLOUT_POLICY, type ModelRegistryService, type ModelVersion } from '@app/registry';

import { MIN_REFIT_ROWS } from './refit.rules';
import { checkFinite, loadVersion, payloadOf, resolveSource, TrainingJobService } from './training-job.service';
import { EmptyWindowError, TrainingInputError } from './training.errors';

const csvJob = { source: { kind: 'csv' as const, path: '/data/x.csv' }, requestedBy: 'admin' };

describe('payloadOf', () => {
  it('passes a train job through', () => {
    const data = { source: { kind: 'csv' as const, path: '/data/x.csv' }, requestedBy: 'admin' };
    expect(payloadOf({ name: TrainingJobName.Train, data, timestamp: 0, opts: {} })).toEqual(data);
  });

  it.each([
    [TrainingJobName.Train, {}, /^source: .*; requestedBy: /],
    [TrainingJobName.Train, { source: { kind: 'events', from: 'x', to: 'y' }, requestedBy: 'a' }, /^source\.from: /],
    [TrainingJobName.Train, { source: { kind: 'csv', path: '/x' }, requestedBy: 'a', junk: 1 }, /^junk is not a field/],
    [TrainingJobName.ScheduledRetrain, { windowDays: '7' }, /^windowDays: /],
    [TrainingJobName.ScheduledRetrain, { windowDays: 7, epochs: 0 }, /^epochs: /],
    // A policy queued by another producer than the API (Bull Board's "add job") is checked as the API checks one.
    [TrainingJobName.ScheduledRetrain, { windowDays: 7, rolloutPolicy: 'fast' }, /^rolloutPolicy: /],
    [
      TrainingJobName.ScheduledRetrain,
      { windowDays: 7, rolloutPolicy: { confidence: 2 } },
      /^rolloutPolicy\.confidence: /,
    ],
    [
      TrainingJobName.ScheduledIncremental,
      { replay: 0, epochs: 1, rolloutPolicy: { minEvents: 1.5 } },
      /^rolloutPolicy\.minEvents: /,
    ],
    [TrainingJobName.Train, { ...csvJob, rolloutPolicy: { maxHours: 0 } }, /^rolloutPolicy\.maxHours: /],
    [
      TrainingJobName.Train,
      { ...csvJob, rolloutPolicy: { tasks: { click: { tolerance: -1 } } } },
      /^rolloutPolicy\.tasks\.click\.tolerance: /,
    ],
    [
      TrainingJobName.Train,
      { ...csvJob, rolloutPolicy: { guardrails: { latencyP99Ms: 1e9 } } },
      /^rolloutPolicy\.guardrails\.latencyP99Ms: /,
    ],
    [
      TrainingJobName.Train,
      { ...csvJob, rolloutPolicy: { tasks: { click: { junk: 1 } } } },
      /^rolloutPolicy\.tasks\.click\.junk is not a field/,
    ],
    ['mystery', {}, /^name: the training queue has no job named "mystery"$/],
  ])('refuses a %s job with the data %j, naming the field', (name, data, message) => {
    expect(() => payloadOf({ name, data, timestamp: 0, opts: {} })).toThrow(
      expect.objectContaining({ name: 'InvalidFieldsError', message: expect.stringMatching(message) }),
    );
  });

  it('turns a scheduled run into the window of days before it was due, the same on every attempt', () => {
    const created = Date.parse('2025-03-09T23:00:00Z');
    const job = {
      name: TrainingJobName.ScheduledRetrain,
      data: { windowDays: 7 },
      timestamp: created,
      opts: { delay: 3_600_000 },
    };
    expect(payloadOf(job)).toEqual({
      source: { kind: 'events', from: '2025-03-03T00:00:00.000Z', to: '2025-03-10T00:00:00.000Z' },
      requestedBy: 'schedule',
    });
    // Warm-started from production, for a set number of epochs.
    expect(payloadOf({ ...job, data: { windowDays: 7, warmStart: true, epochs: 1 } })).toEqual({
      source: { kind: 'events', from: '2025-03-03T00:00:00.000Z', to: '2025-03-10T00:00:00.000Z' },
      warmStart: { from: 'production' },
      overrides: { epochs: 1 },
      requestedBy: 'schedule',
    });
  });
});

describe('payloadOf, incremental', () => {
  it('warm-starts from production on the events up to when the run was due, with the cadence settings', () => {
    const policy = { confidence: 0.9, minEvents: 200, tolerance: 0.02 };
    const job = {
      name: TrainingJobName.ScheduledIncremental,
      data: { replay: 0.3, epochs: 2, rolloutPolicy: policy },
      timestamp: Date.parse('2025-03-10T09:59:58Z'),
      opts: { delay: 2_000 },
    };
    expect(payloadOf(job)).toEqual({
      source: { kind: 'incremental', to: '2025-03-10T10:00:00.000Z', replay: 0.3 },
      warmStart: { from: 'production' },
      overrides: { epochs: 2 },
      requestedBy: 'schedule',
      rolloutPolicy: { ...DEFAULT_ROLLOUT_POLICY, ...policy },
    });
  });

  it('reads a policy the edge once let through as it was taken to mean: no maximum, every binary task', () => {
    const data = { ...csvJob, rolloutPolicy: { minEvents: 50, maxEvents: null, tasks: {} } };
    expect(payloadOf({ name: TrainingJobName.Train, data, timestamp: 0, opts: {} }).rolloutPolicy).toEqual({
      ...DEFAULT_ROLLOUT_POLICY,
      minEvents: 50,
    });
  });
});

describe('TrainingJobService, retried after its version was committed', () => {
  beforeAll(() => jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined));
  afterAll(() => jest.restoreAllMocks());

  const queuedAt = Date.parse('2025-03-10T00:00:00Z');
  const job = {
    id: 'job-1',
    name: TrainingJobName.Train,
    timestamp: queuedAt,
    opts: {},
    data: { source: { kind: 'csv', path: '/data/x.csv' }, requestedBy: 'admin' },
  } as unknown as Job;
  const stored = {
    tasks: { click: { auc: 0.71 } },
    productionHoldout: { versionId: 1, tasks: { click: { auc: 0.7 } } },
    examples: 990,
    gate: {
      decision: 'canary',
      reason: 'click AUC improved (0.71 vs production 0.7); no task is worse beyond the tolerance',
    },
    training: { rows: 4010, seconds: 2.5 },
  };
  const version = (extra: Partial<ModelVersion> = {}) =>
    ({
      id: 5,
      status: 'candidate',
      trainingJobId: 'job-1',
      metrics: stored,
      createdAt: new Date(queuedAt + 60_000),
      ...extra,
    }) as ModelVersion;

  let recordGateOutcome: jest.Mock;
  beforeEach(() => (recordGateOutcome = jest.fn()));

  function service(
    registered: ModelVersion,
    setCanary: jest.Mock = jest.fn(),
    { now = registered, setRolloutPolicy = jest.fn() }: { now?: ModelVersion; setRolloutPolicy?: jest.Mock } = {},
  ): TrainingJobService {
    const registry = {
      findByTrainingJob: async () => registered,
      find: async () => now,
      setCanary,
      setRolloutPolicy,
      recordGateOutcome,
    } as unknown as ModelRegistryService;
    // Nothing else is touched: the job is not trained again.
    return new TrainingJobService(loadConfig({}), registry, undefined as never, undefined as never);
  }

  it('finishes with the stored version: applies the gate it recorded and reports its metrics', async () => {
    const setCanary = jest.fn();
    await expect(service(version(), setCanary).run(job)).resolves.toEqual({
      versionId: 5,
      candidate: stored.tasks,
      production: stored.productionHoldout.tasks,
      decision: 'canary',
      reason: stored.gate.reason,
      examples: { train: 4010, holdout: 990 },
      trainingSeconds: 2.5,
    });
    // Against the production its gate judged it by: one changed since refuses the canary.
    expect(setCanary).toHaveBeenCalledWith(5, 10, undefined, 'worker', { judgedAgainst: 1 });
    expect(recordGateOutcome).not.toHaveBeenCalled(); // the gate's decision stands
  });

  it('reports beside the whole slice what the gate compared, when production had trained on part of it', async () => {
    const unseen = {
      trainedTo: '2026-12-01T10:00:00.000Z',
      rows: 420,
      candidate: { click: { auc: 0.69 } },
      production: { click: { auc: 0.66 } },
    };
    const judged = version({
      metrics: { ...stored, productionHoldout: { ...stored.productionHoldout, unseen } } as never,
    });
    await expect(service(judged).run(job)).resolves.toMatchObject({
      candidate: stored.tasks,
      production: stored.productionHoldout.tasks,
      unseen,
    });
  });

  it('leaves a version alone that has moved on since (already the canary, or taken elsewhere by a human)', async () => {
    const setCanary = jest.fn();
    await service(version({ status: 'canary' }), setCanary).run(job);
    expect(setCanary).not.toHaveBeenCalled();
    const refused = jest
      .fn()
      .mockRejectedValue(new ConflictError('version 5 is archived; only a candidate can become the canary'));
    const outcome = {
      decision: 'candidate',
      reason: `passed the gate (${stored.gate.reason}), but the canary was refused: version 5 is archived; only a candidate can become the canary`,
    };
    await expect(service(version(), refused, { now: version({ status: 'archived' }) }).run(job)).resolves.toMatchObject(
      outcome,
    );
    expect(recordGateOutcome).toHaveBeenCalledWith(5, outcome); // the version no longer shows a canary decision
  });

  it('records on the version a canary refused after the gate passed, and a retry finishes from that record', async () => {
    const refused = jest
      .fn()
      .mockRejectedValue(new ConflictError('version 4 is the canary; promote or roll it back before another'));
    const outcome = {
      decision: 'candidate',
      reason: `passed the gate (${stored.gate.reason}), but the canary was refused: version 4 is the canary; promote or roll it back before another`,
    };
    await expect(service(version(), refused).run(job)).resolves.toMatchObject(outcome);
    expect(recordGateOutcome).toHaveBeenCalledWith(5, outcome);
    // Retried after that record: no canary is asked for again, and nothing is recorded twice.
    recordGateOutcome.mockClear();
    const setCanary = jest.fn();
    const recorded = version({ metrics: { ...stored, gate: outcome } as never });
    await expect(service(recorded, setCanary).run(job)).resolves.toMatchObject(outcome);
    expect(setCanary).not.toHaveBeenCalled();
    expect(recordGateOutcome).not.toHaveBeenCalled();
  });

  it("keeps a candidate whose cadence's policy gates a task the model lacks: no canary left waiting without it", async () => {
    const policy = { ...DEFAULT_ROLLOUT_POLICY, tasks: { like: { minEvents: 50 } } };
    const withPolicy = { ...job, data: { ...job.data, rolloutPolicy: policy } } as Job;
    const clickOnly = {
      features: [{ name: 'x', type: 'numeric' }],
      tasks: [{ name: 'click', label: 'click', type: 'binary' }],
      model: { experts: 2, expertUnits: [4] },
    };
    const setCanary = jest.fn();
    const outcome = (await service(version({ spec: clickOnly } as never), setCanary).run(
      withPolicy,
    )) as TrainingJobResult;
    expect(outcome).toMatchObject({
      decision: 'candidate',
      reason: expect.stringMatching(
        /^passed the gate \(click AUC improved .*\), but its rollout policy does not fit it: rolloutPolicy\.tasks\.like/,
      ),
    });
    expect(setCanary).not.toHaveBeenCalled();
    expect(recordGateOutcome).toHaveBeenCalledWith(5, { decision: 'candidate', reason: outcome.reason });
  });

  it('makes the canary without a policy refused only at its step (a race), saying so, once', async () => {
    const policy = { ...DEFAULT_ROLLOUT_POLICY, tasks: { like: { minEvents: 50 } } };
    const withPolicy = { ...job, data: { ...job.data, rolloutPolicy: policy } } as Job;
    const setRolloutPolicy = jest.fn().mockRejectedValue(
      new InvalidFieldsError([
        {
          field: 'tasks.like',
          message: 'tasks.like is not a binary task of the model (click); only binary tasks gate, on AUC',
        },
      ]),
    );
    const canary = version({ status: 'canary' });
    const reason = `${stored.gate.reason}; its rollout policy was refused: tasks.like is not a binary task of the model (click); only binary tasks gate, on AUC`;
    await expect(
      service(version(), jest.fn(), { now: canary, setRolloutPolicy }).run(withPolicy),
    ).resolves.toMatchObject({ decision: 'canary', reason });
    expect(recordGateOutcome).toHaveBeenCalledWith(5, { decision: 'canary', reason });
    // A retry after that record refuses the policy again, and says so once.
    recordGateOutcome.mockClear();
    const recorded = version({
      status: 'canary',
      metrics: { ...stored, gate: { decision: 'canary', reason } } as never,
    });
    await expect(service(recorded, jest.fn(), { setRolloutPolicy }).run(withPolicy)).resolves.toMatchObject({ reason });
    expect(recordGateOutcome).not.toHaveBeenCalled();
  });

  it("takes an overlapping attempt's steps as its own outcome, and records neither twice", async () => {
    // The other attempt made the version the canary and set its policy after this one read it as a candidate.
    const policy = { ...DEFAULT_ROLLOUT_POLICY, minEvents: 50 };
    const taken = version({ status: 'canary', rolloutPolicy: policy });
    const setCanary = jest
      .fn()
      .mockRejectedValue(
        new ConflictError('version 5 is the canary; a training job makes its candidate the canary, once'),
      );
    const setRolloutPolicy = jest.fn().mockRejectedValue(new ConflictError('version 5 has a rollout policy already'));
    const withPolicy = { ...job, data: { ...job.data, rolloutPolicy: policy } } as Job;
    await expect(
      service(version(), setCanary, { now: taken, setRolloutPolicy }).run(withPolicy),
    ).resolves.toMatchObject({
      decision: 'canary',
      reason: stored.gate.reason,
    });
    expect(setRolloutPolicy).toHaveBeenCalledWith(5, policy, 'worker', { once: true });
  });

  it('refuses a version that records the job but not its evaluation (one a worker did not register)', async () => {
    await expect(service(version({ metrics: {} })).run(job)).rejects.toMatchObject({
      name: 'TrainingInputError',
      message: 'version 5 records this job but not its evaluation: a worker did not register it',
    });
  });

  it('refuses a version that records the same job id from before the job was queued', async () => {
    await expect(service(version({ createdAt: new Date(queuedAt - 1) })).run(job)).rejects.toMatchObject({
      name: 'TrainingInputError',
      message: expect.stringMatching(
        /^version 5 already records a training job job-1, made before this job was queued/,
      ),
    });
  });
});

describe('TrainingJobService, retried after its skip was recorded', () => {
  const window = { from: '2026-12-01T00:00:00.000Z', to: '2026-12-01T01:00:00.000Z' };
  const job = {
    id: 'job-2',
    name: TrainingJobName.ScheduledIncremental,
    timestamp: Date.parse('2026-12-01T01:00:00Z'),
    opts: {},
    data: { replay: 0.2, epochs: 1 },
  } as unknown as Job;
  /** The job run again, an earlier attempt having recorded `skip`; no data or cancellations: reading them would throw. */
  const retried = (skip: object) => {
    const registry = {
      findByTrainingJob: async () => undefined,
      findSkippedRun: async () => ({ id: 9, action: 'skip', toVersionId: 4, ...skip }),
    } as unknown as ModelRegistryService;
    return new TrainingJobService(loadConfig({}), registry, undefined as never, undefined as never).run(job);
  };

  it('is that skip, and trains nothing, whatever events have been stored since', async () => {
    const evidence = { skipped: { job: 'job-2', reason: 'no event since the parent', window } };
    await expect(retried({ createdAt: new Date('2026-12-01T01:00:30Z'), evidence })).resolves.toEqual({
      skipped: { reason: 'no event since the parent', parentVersionId: 4, window },
    });
  });

  it('refuses a skip recorded before the job was queued: another job had its id', async () => {
    await expect(retried({ createdAt: new Date(0), evidence: {} })).rejects.toThrow(
      /^skip 9 already records a training job job-2, made before this job/,
    );
  });
});

describe('checkFinite', () => {
  const model = (values: number[]) =>
    ({ network: { snapshot: () => new Map([['experts/0/kernel', Float32Array.from(values)]]) } }) as MultiTaskModel;

  it('fails a diverged training at once, naming the weight, and passes a finite one', () => {
    expect(() => checkFinite(model([0.5, Number.NaN]))).toThrow(
      new TrainingInputError(
        'training diverged: weight experts/0/kernel holds NaN at index 1; lower training.learningRate, or check the scale of the labels',
      ),
    );
    expect(() => checkFinite(model([0.5, -2]))).not.toThrow();
  });
});

describe('loadVersion', () => {
  it('fails the job at once, naming the version, when its artifact does not load: a retry would fail alike', () => {
    expect(() => loadVersion(7, Buffer.from('not an artifact'))).toThrow(
      new TrainingInputError('the artifact of version 7 does not load: not an MMoE model artifact (bad magic bytes)'),
    );
  });
});

describe('resolveSource', () => {
  const parent = {
    id: 3,
    metrics: {
      dataset: {
        source: { kind: 'events' as const, from: '2025-02-01T00:00:00.000Z', to: '2025-02-06T00:00:00.000Z' },
        window: { from: '2025-02-01T00:00:00.000Z', to: '2025-02-06T00:00:00.000Z' },
        trainedTo: '2025-02-05T01:00:00.000Z',
        historyFrom: '2025-02-01T00:00:00.000Z',
        holdoutFraction: 0.2,
        holdoutStart: '2025-02-05T01:00:00.000Z',
        skippedRows: 0,
      },
    },
  };

  it("starts an incremental window at the parent's held-out events, and replays from the lineage's start", () => {
    const source = { kind: 'incremental' as const, to: '2025-02-07T00:00:00.000Z', replay: 0.2 };
    expect(resolveSource({ source }, parent, 30)).toEqual({
      source: { kind: 'events', from: '2025-02-05T01:00:00.000Z', to: '2025-02-07T00:00:00.000Z' },
      historyFrom: '2025-02-01T00:00:00.000Z',
      replay: { from: '2025-02-01T00:00:00.000Z', to: '2025-02-05T01:00:00.000Z', share: 0.2 },
    });
  });

  it('starts a lineage with an events window', () => {
    const source = { kind: 'events' as const, from: 'a', to: 'b' };
    expect(resolveSource({ source }, undefined, 30)).toEqual({ source, historyFrom: 'a' });
  });

  it('refuses a parent trained on a file, saying what a job, or for a scheduled run the schedule, can do', () => {
    const source = { kind: 'incremental' as const, to: '2025-02-07T00:00:00.000Z' };
    const fromFile = { id: 1, metrics: { dataset: { source: { kind: 'csv' as const, path: '/data/x.csv' } } } };
    expect(() => resolveSource({ source, requestedBy: 'admin' }, fromFile as never, 30)).toThrow(
      new TrainingInputError(
        'version 1 records no window of events to continue from (trained on a file?): give source.from and source.to',
      ),
    );
    expect(() => resolveSource({ source, requestedBy: 'schedule' }, fromFile as never, 30)).toThrow(
      /^production version 1 records no window of events .*: the incremental cadence continues from production's events; promote a version trained on events first \(a full retrain/,
    );
  });

  it("refuses a window that ends before the parent's training data does: empty, naming source.to", () => {
    const source = { kind: 'incremental' as const, to: '2025-02-05T00:00:00.000Z' };
    expect(() => resolveSource({ source }, parent, 30)).toThrow(EmptyWindowError);
    expect(() => resolveSource({ source }, parent, 30)).toThrow(/^source\.to: no new events/);
  });
});

describe('TrainingJobService, a production whose artifact does not load', () => {
  it('is not judged, rather than failing the job that would train its replacement', async () => {
    const spec = {
      features: [{ name: 'genre', type: 'categorical' }],
      tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
      model: { expertUnits: [4] },
    };
    const registry = { findArtifact: async () => ({ artifact: Buffer.from('not an artifact') }) };
    const svc = new TrainingJobService(loadConfig({}), registry as never, undefined as never, undefined as never);
    const evaluateProduction = (svc as unknown as { evaluateProduction: (job: unknown) => Promise<unknown> })
      .evaluateProduction;
    await expect(
      evaluateProduction.call(svc, {
        production: { id: 3, spec },
        spec: parseModelSpec(spec),
        data: { productionHoldout: {} },
      }),
    ).resolves.toEqual({
      kind: 'incomparable',
      versionId: 3,
      why: 'the artifact of version 3 does not load: not an MMoE model artifact (bad magic bytes)',
    });
  });
});

describe('TrainingJobService, production trained on part of the held-out slice', () => {
  const spec = {
    features: [{ name: 'genre', type: 'categorical' }],
    tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
    model: { expertUnits: [4] },
  };
  const trainedTo = '2025-03-09T00:00:00.000Z';
  const production = { id: 3, spec, metrics: { dataset: { trainedTo } } };

  it("reads the data with production's trainedTo, to set apart the rows it has not trained on", async () => {
    const load = jest.fn().mockRejectedValue(new Error('read'));
    const registry = { findServing: async () => ({ production }) };
    const svc = new TrainingJobService(loadConfig({}), registry as never, { load } as never, undefined as never);
    const payload = payloadOf({
      name: TrainingJobName.ScheduledRetrain,
      data: { windowDays: 7 },
      timestamp: Date.parse('2025-03-10T00:00:00Z'),
      opts: {},
    });
    const prepare = (svc as unknown as { prepare: (payload: unknown) => Promise<unknown> }).prepare;
    await expect(prepare.call(svc, payload)).rejects.toThrow('read');
    expect(load).toHaveBeenCalledWith(
      payload.source,
      expect.anything(),
      expect.anything(), // production's spec: it is judged
      0.2,
      'user_id',
      { productionTrainedTo: trainedTo },
    );
  });

  it('judges both models on those rows beside the whole slice, and on none when none is left', async () => {
    const svc = new TrainingJobService(loadConfig({}), undefined as never, undefined as never, undefined as never);
    // Each model's metric says how many rows it was evaluated on.
    const model = (auc: number) => ({
      evaluate: jest.fn((table: { size: number }) => ({ tasks: { click: { auc, count: table.size } } })),
    });
    const [candidate, productionModel] = [model(0.72), model(0.7)];
    const evaluateProduction = (unseenRows: number) =>
      (svc as unknown as { evaluateProduction: (...args: unknown[]) => Promise<unknown> }).evaluateProduction.call(
        svc,
        {
          production,
          spec: parseModelSpec(spec),
          parent: production,
          parentModel: productionModel, // a warm start from production: loaded already
          data: {
            productionHoldout: { size: 10 },
            unseenByProduction: {
              trainedTo,
              holdout: { size: unseenRows },
              productionHoldout: { size: unseenRows },
            },
          },
        },
        candidate,
      );
    await expect(evaluateProduction(4)).resolves.toEqual({
      kind: 'evaluated',
      versionId: 3,
      tasks: { click: { auc: 0.7, count: 10 } },
      unseen: {
        trainedTo,
        rows: 4,
        candidate: { click: { auc: 0.72, count: 4 } },
        production: { click: { auc: 0.7, count: 4 } },
      },
    });
    candidate.evaluate.mockClear();
    await expect(evaluateProduction(0)).resolves.toMatchObject({
      unseen: { trainedTo, rows: 0, candidate: {}, production: {} },
    });
    expect(candidate.evaluate).not.toHaveBeenCalled();
  });
});

describe('TrainingJobService, a warm start from production when there is none', () => {
  it('names the job field, or for a scheduled run the schedule', async () => {
    const svc = new TrainingJobService(loadConfig({}), undefined as never, undefined as never, undefined as never);
    const parentOf = (requestedBy: string) =>
      (svc as unknown as { parentOf: (...args: unknown[]) => Promise<unknown> }).parentOf(
        { source: { kind: 'events' }, warmStart: { from: 'production' }, requestedBy },
        undefined,
      );
    await expect(parentOf('admin')).rejects.toThrow(/^warmStart\.from: there is no production version/);
    await expect(parentOf('schedule')).rejects.toThrow(
      /^the schedule warm-starts from production, and there is no production version yet/,
    );
  });
});

describe('TrainingJobService, a rollout policy the spec cannot carry', () => {
  const spec = {
    features: [{ name: 'genre', type: 'categorical' }],
    tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
    model: { expertUnits: [4] },
  };
  const policy = { tasks: { like: {} } };
  /** Prepares `payload` against a click-only production; the data service throws when reached. */
  const prepare = (payload: unknown) => {
    const registry = { findServing: async () => ({ production: { id: 3, spec, metrics: {} } }) };
    const data = {
      load: async () => {
        throw new Error('reached the data');
      },
    };
    const svc = new TrainingJobService(loadConfig({}), registry as never, data as never, undefined as never);
    return (svc as unknown as { prepare: (payload: unknown) => Promise<unknown> }).prepare.call(svc, payload);
  };

  it('fails a job before it reads any data, naming the field, as the API refuses it', async () => {
    const payload = payloadOf({
      name: TrainingJobName.Train,
      data: { source: { kind: 'events', from: '2025-03-03T00:00:00Z', to: '2025-03-10T00:00:00Z' }, requestedBy: 'a' },
      timestamp: 0,
      opts: {},
    });
    await expect(prepare({ ...payload, rolloutPolicy: policy })).rejects.toThrow(
      expect.objectContaining({
        name: 'InvalidFieldsError',
        message: expect.stringMatching(/^rolloutPolicy\.tasks\.like is not a binary task of the model \(click\)/),
      }),
    );
  });

  it("trains a cadence's run all the same: production may have changed since its policy was checked", async () => {
    const payload = payloadOf({
      name: TrainingJobName.ScheduledRetrain,
      data: { windowDays: 7, rolloutPolicy: policy },
      timestamp: Date.parse('2025-03-10T00:00:00Z'),
      opts: {},
    });
    await expect(prepare(payload)).rejects.toThrow('reached the data');
  });
});

describe('TrainingJobService, refit of a tiny held-out slice', () => {
  let warn: jest.SpyInstance;
  beforeAll(() => (warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined)));
  afterAll(() => jest.restoreAllMocks());

  it('refits no slice below MIN_REFIT_ROWS, rather than failing a job whose gate passed, and says so', () => {
    const svc = new TrainingJobService(loadConfig({}), undefined as never, undefined as never, undefined as never);
    const refits = (rows: number, refit?: boolean) =>
      (svc as unknown as { refits: (...args: unknown[]) => boolean }).refits('job-1', {
        payload: { source: { kind: 'events' }, refit },
        data: { holdout: { size: rows } },
      });
    for (const rows of [1, MIN_REFIT_ROWS - 1]) expect(refits(rows)).toBe(false);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn).toHaveBeenLastCalledWith(expect.stringMatching(/^job job-1: no refit on 9 held-out rows/));
    expect(refits(MIN_REFIT_ROWS)).toBe(true);
    expect(refits(1, false)).toBe(false); // not asked for: nothing to warn of
    expect(warn).toHaveBeenCalledTimes(2);
  });
});
