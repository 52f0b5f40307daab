import { createHash } from 'node:crypto';
import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { ConflictError, InvalidFieldsError, NotFoundError } from '@app/common';
import { SERVED_SET_LOCK_KEY } from '@app/db';
import { MultiTaskModel } from '@app/mmoe';
import {
  DEFAULT_ROLLOUT_POLICY,
  ModelRegistryService,
  POLICY_METHOD,
  POLICY_TEST,
  RegistryModule,
  type PolicyDecision,
} from '@app/registry';

import { seedModelVersion, TINY_SPEC, tinyArtifact } from '../fixtures/model.fixture';
import { createMediumModule } from './medium.module';

/** The registry's transitions on the real Postgres (and its notices on Redis), through the service alone. */
describe('ModelRegistryService (medium: real Postgres and Redis)', () => {
  let moduleRef: TestingModule;
  let registry: ModelRegistryService;
  // One production and one canary at a time are global to the table: while it runs, this spec owns the registry.
  const truncate = () => moduleRef.get(DataSource).query('TRUNCATE model_versions, rollout_events CASCADE');

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [RegistryModule] });
    registry = moduleRef.get(ModelRegistryService);
    await truncate();
  });

  afterAll(async () => {
    await truncate();
    await moduleRef.close();
  });

  const register = async (seed: number) =>
    registry.register({ artifact: (await tinyArtifact(seed)).artifact, note: `seed ${seed}` }, 'medium');

  it('registers a validated artifact as a candidate with its ONNX export and checksums', async () => {
    const version = await register(1);
    expect(version).toMatchObject({ status: 'candidate', note: 'seed 1', canaryPercent: null });
    expect(version.artifactSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(version.onnxSha256).toMatch(/^[0-9a-f]{64}$/);
    const [{ bytes }] = await moduleRef
      .get(DataSource)
      .query('SELECT octet_length(onnx) AS bytes FROM model_versions WHERE id = $1', [version.id]);
    expect(bytes).toBeGreaterThan(0);
    expect((await registry.findArtifact(version.id))?.artifact.length).toBeGreaterThan(0);
    await expect(registry.register({ artifact: Buffer.from('nope') }, 'medium')).rejects.toBeInstanceOf(
      InvalidFieldsError,
    );
  });

  it('registers a version in int8 when its recorded holdout check passed on every task (INT8_SERVING=auto)', async () => {
    const { artifact } = await tinyArtifact(4);
    const check = (tasks: string[]) => ({
      int8: {
        eligible: true,
        maxAucDrop: 0.0002,
        tolerance: 0.001,
        auc: Object.fromEntries(tasks.map((t) => [t, { fp32: 0.8, int8: 0.8 }])),
        rows: 500,
      },
    });
    const judged = await registry.register({ artifact, metrics: check(['click', 'like', 'watch_time']) }, 'medium');
    expect(judged.servingPrecision).toBe('int8');
    // watch_time not judged (as for every regression task): it starts in fp32, like a version without a check.
    const partial = await registry.register({ artifact, metrics: check(['click', 'like']) }, 'medium');
    expect(partial.servingPrecision).toBe('fp32');
    expect((await registry.register({ artifact }, 'medium')).servingPrecision).toBe('fp32');
  });

  it('goes candidate → canary → production, then rolls back to the version it replaced', async () => {
    const [first, second] = [await register(2), await register(3)];
    await registry.setCanary(first.id, 10, undefined, 'medium');
    expect((await registry.promote(first.id, undefined, 'medium')).production?.id).toBe(first.id);

    const canary = await registry.setCanary(second.id, 25, { objectiveWeights: { click: 2 } }, 'medium');
    expect(canary.canary).toMatchObject({ id: second.id, canaryPercent: 25 });
    expect(canary.canary?.objectiveWeights).toMatchObject({ click: 2 });
    const promoted = await registry.promote(undefined, undefined, 'medium');
    expect([promoted.production?.id, promoted.canary]).toEqual([second.id, undefined]);
    expect((await registry.get(first.id)).status).toBe('archived');

    const rolledBack = await registry.rollback('medium');
    expect(rolledBack.event).toMatchObject({ action: 'rollback', fromVersionId: second.id, toVersionId: first.id });
    expect((await registry.findServing()).production?.id).toBe(first.id);
    const history = await registry.history(10, 0);
    expect(history.items.map((e) => e.action).slice(0, 5)).toEqual([
      'rollback',
      'promote',
      'canary',
      'promote',
      'canary',
    ]);
  });

  it('reads rows written by earlier code: a policy without the newer fields, a first worker record, old evidence', async () => {
    const version = await register(4);
    const db = moduleRef.get(DataSource);
    const policy = { confidence: 0.9, minEvents: 500, tolerance: 0.02 };
    // What the first worker stored: no calibration, no int8 check, no row counts beside `rows`, no groupBy.
    const metrics = {
      tasks: { click: { auc: 0.71, logloss: 0.5 } },
      gates: {},
      examples: 990,
      gate: { decision: 'candidate', reason: 'there is no production version to compare with; promote one by hand' },
      training: {
        epochsRun: 1,
        bestEpoch: 1,
        stoppedEarly: false,
        history: [{ epoch: 1, loss: 0.6, validLoss: 0.55, metric: 0.7, tasks: { click: 0.7 } }],
        examplesPerSec: 5000,
        seconds: 1.5,
        validation: { click: { auc: 0.7 } },
        rows: 4010,
      },
      dataset: {
        source: { kind: 'events', from: '2025-01-01T00:00:00.000Z', to: '2025-01-08T00:00:00.000Z' },
        holdoutFraction: 0.2,
        holdoutStart: '2025-01-06T14:00:00.000Z',
        skippedRows: 0,
      },
    };
    await db.query('UPDATE model_versions SET rollout_policy = $1, metrics = $2 WHERE id = $3', [
      policy,
      metrics,
      version.id,
    ]);
    const decision = {
      verdict: 'reject',
      reason: 'worse beyond tolerance on click',
      confidence: 0.95,
      test: 'delong-unpaired',
      tasks: [{ task: 'click', verdict: 'reject', pValueNotWorse: 0.9, pValueWorse: 0.001 }],
    };
    await db.query(
      `INSERT INTO rollout_events (action, actor, from_version_id, to_version_id, percent, evidence)
       VALUES ('reject', 'policy', $1, NULL, NULL, $2)`,
      [version.id, decision],
    );

    const read = await registry.get(version.id);
    expect(read.rolloutPolicy).toEqual({ ...policy, minUsers: 100, maxHours: 168 });
    expect(read.metrics).toEqual(metrics);
    expect(await registry.trainingReport(version.id)).toContain(`Model version ${version.id}`);
    expect((await registry.compare(version.id, version.id)).tasks[0].metrics).toContainEqual({
      metric: 'auc',
      a: 0.71,
      b: 0.71,
      delta: 0,
    });
    expect((await registry.history(1, 0)).items[0]).toMatchObject({ action: 'reject', evidence: decision });
  });

  it("keeps an upload's validation report only when it holds metrics by task", async () => {
    const model = MultiTaskModel.fromArtifact((await tinyArtifact(5)).artifact);
    try {
      const artifact = model.toArtifact({ training: { bestEpoch: 1, valid: { tasks: 'junk', examples: 3 } } });
      const version = await registry.register({ artifact }, 'medium');
      expect(version.metrics).toEqual({});
      const compared = await registry.compare(version.id, version.id);
      expect(compared.tasks).toEqual(model.spec.tasks.map((task) => ({ task: task.name, metrics: [] })));
    } finally {
      model.dispose();
    }
  });

  it("times the policy's test from the canary's entry, or from the policy's last setting if later", async () => {
    const version = await register(6);
    await registry.setRolloutPolicy(version.id, DEFAULT_ROLLOUT_POLICY, 'medium');
    expect(await registry.policyTest(version.id)).toBeUndefined(); // never the canary: no test
    const entered = await registry.setCanary(version.id, 20, undefined, 'medium');
    // Set before the version became the canary: the test starts with the canary.
    expect(await registry.policyTest(version.id)).toEqual({
      entered: { id: entered.event.id, createdAt: new Date(entered.event.createdAt) },
      startedAt: new Date(entered.event.createdAt),
      ended: false,
      eventId: entered.event.id,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const set = await registry.setRolloutPolicy(version.id, { ...DEFAULT_ROLLOUT_POLICY, maxHours: 2 }, 'medium');
    // Set again (as after an inconclusive end): maxHours counts from then; the comparison still runs from the entry.
    expect(await registry.policyTest(version.id)).toMatchObject({
      entered: { id: entered.event.id },
      startedAt: new Date(set.event.createdAt),
      ended: false,
      eventId: set.event.id,
    });
    expect(new Date(set.event.createdAt).getTime()).toBeGreaterThan(new Date(entered.event.createdAt).getTime());
    await registry.archive(version.id, 'medium');
  });

  it("applies a policy's decision only while the test it was made on is current", async () => {
    const version = await register(8);
    await registry.setCanary(version.id, 20, undefined, 'medium');
    await registry.setRolloutPolicy(version.id, DEFAULT_ROLLOUT_POLICY, 'medium');
    const read = (await registry.policyTest(version.id))!;
    const decision: PolicyDecision & { verdict: 'inconclusive' } = {
      verdict: 'inconclusive',
      reason: 'no decision after 168 h',
      confidence: 0.95,
      test: POLICY_TEST,
      method: POLICY_METHOD,
      elapsedHours: 168,
      users: { canary: 0, production: 0, minUsers: 100 },
      tasks: [],
      guardrails: [],
    };
    // A person tightens the policy after the check read it: the check's verdict is not applied, nothing is recorded.
    const tightened = await registry.setRolloutPolicy(
      version.id,
      { ...DEFAULT_ROLLOUT_POLICY, tolerance: 0 },
      'medium',
    );
    await expect(registry.applyPolicyDecision(version.id, decision, read.eventId)).rejects.toThrow(
      `the test of canary ${version.id} changed while it was checked (event ${tightened.event.id}, not ${read.eventId})`,
    );
    expect((await registry.history(1, 0)).items[0]).toMatchObject({ id: tightened.event.id });
    // On the current test it is; a second check that read the same test finds it ended: recorded once.
    await registry.applyPolicyDecision(version.id, decision, tightened.event.id);
    await expect(registry.applyPolicyDecision(version.id, decision, tightened.event.id)).rejects.toBeInstanceOf(
      ConflictError,
    );
    const ends = (await registry.history(100, 0)).items.filter(
      (e) => e.action === 'inconclusive' && e.toVersionId === version.id,
    );
    expect(ends).toHaveLength(1);
    await registry.archive(version.id, 'medium');
  });

  it("sets a job's policy once: a second attempt's is refused, and recorded once", async () => {
    const version = await register(7);
    await registry.setRolloutPolicy(version.id, DEFAULT_ROLLOUT_POLICY, 'worker', { once: true });
    await expect(
      registry.setRolloutPolicy(version.id, { ...DEFAULT_ROLLOUT_POLICY, minEvents: 5 }, 'worker', { once: true }),
    ).rejects.toThrow(new ConflictError(`version ${version.id} has a rollout policy already`));
    expect((await registry.find(version.id))?.rolloutPolicy).toEqual(DEFAULT_ROLLOUT_POLICY);
    const policyEvents = (await registry.history(100, 0)).items.filter(
      (e) => e.action === 'policy' && e.toVersionId === version.id,
    );
    expect(policyEvents).toHaveLength(1);
    // Cleared once; clearing none records nothing.
    await registry.setRolloutPolicy(version.id, null, 'medium');
    await expect(registry.setRolloutPolicy(version.id, null, 'medium')).rejects.toThrow(
      new ConflictError(`version ${version.id} has no rollout policy`),
    );
    expect(
      (await registry.history(100, 0)).items.filter((e) => e.action === 'policy' && e.toVersionId === version.id),
    ).toHaveLength(2);
    await registry.archive(version.id, 'medium');
  });

  it("records what a training job's gate came to in place of its decision, leaving the other metrics", async () => {
    const version = await register(8);
    const gate = { decision: 'candidate' as const, reason: 'passed the gate, but the canary was refused: why' };
    await registry.recordGateOutcome(version.id, gate);
    expect((await registry.find(version.id))?.metrics).toEqual({ ...version.metrics, gate });
    await expect(registry.recordGateOutcome(version.id + 1000, gate)).rejects.toThrow(
      new NotFoundError(`version ${version.id + 1000} does not exist`),
    );
    await registry.archive(version.id, 'medium');
  });

  it('refuses to serve a version stored with a NaN weight: every process would fail to load it', async () => {
    const dataSource = moduleRef.get(DataSource);
    const id = await seedModelVersion(dataSource, 'candidate');
    // As a worker stored a diverged training before weights were checked: the first weight's first value NaN.
    const artifact = Buffer.from((await registry.findArtifact(id))!.artifact);
    const body = artifact.subarray(48);
    body.writeFloatLE(Number.NaN, artifact.readUInt32LE(44));
    createHash('sha256').update(body).digest().copy(artifact, 12);
    await dataSource.query('UPDATE model_versions SET artifact = $1 WHERE id = $2', [artifact, id]);
    const events = (await registry.history(100, 0)).total;
    const refused = expect.objectContaining({
      name: 'ConflictError',
      message: expect.stringMatching(
        new RegExp(
          `^version ${id} cannot be served: its artifact does not load \\(weight \\S+ holds NaN at index 0\\)$`,
        ),
      ),
    });
    await expect(registry.setCanary(id, 10, undefined, 'medium')).rejects.toThrow(refused);
    await expect(registry.setShadow(id, 10, 'medium')).rejects.toThrow(refused);
    expect((await registry.get(id)).status).toBe('candidate');
    expect((await registry.history(100, 0)).total).toBe(events);
    await registry.archive(id, 'medium');
  });

  it('refuses what the rules refuse, with domain errors', async () => {
    const { production } = await registry.findServing();
    await expect(registry.archive(production!.id, 'medium')).rejects.toBeInstanceOf(ConflictError);
    await expect(registry.promote(undefined, undefined, 'medium')).rejects.toThrow(/there is no canary to promote/);
    await expect(registry.setCanary(987_654, 10, undefined, 'medium')).rejects.toBeInstanceOf(NotFoundError);
    await expect(registry.get(987_654)).rejects.toThrow('version 987654 does not exist');
    // A job's gate judged a version against a production that a rollback has replaced since: no canary, no change.
    const judged = await register(4);
    await expect(
      registry.setCanary(judged.id, 10, undefined, 'worker', { judgedAgainst: production!.id + 1000 }),
    ).rejects.toThrow(
      `it was judged against production ${production!.id + 1000}, and production is version ${production!.id} now`,
    );
    expect((await registry.get(judged.id)).status).toBe('candidate');
    await registry.setCanary(judged.id, 10, undefined, 'worker', { judgedAgainst: production!.id });
    expect((await registry.findServing()).canary?.id).toBe(judged.id);
    // The same call again (a client's retry) would start a new live test: refused, nothing recorded.
    const recorded = (await registry.history(100, 0)).total;
    await expect(registry.setCanary(judged.id, 10, undefined, 'medium')).rejects.toThrow(
      `version ${judged.id} is the canary; it already serves 10 % of users`,
    );
    expect((await registry.history(100, 0)).total).toBe(recorded);

    // Its user_recent_genres fed by clicks, where production's is written by PUT: not served beside it, nothing changed.
    const fed = await seedModelVersion(moduleRef.get(DataSource), 'candidate', {
      training: {
        features: TINY_SPEC.features.map((f) =>
          f.type === 'sequence' && f.name === 'user_recent_genres'
            ? { ...f, fromEvents: { task: 'click', itemFeature: 'item_genre' } }
            : f,
        ),
      },
    });
    const events = (await registry.history(100, 0)).total;
    await expect(registry.setCanary(fed, 10, undefined, 'medium')).rejects.toThrow(
      new ConflictError(
        `version ${fed} cannot be served beside version ${production!.id} (in production): user_recent_genres comes ` +
          `from click events' item_genre in version ${fed}, from PUT in version ${production!.id}; a user stores one ` +
          'value per feature name, so rename it in one of them',
      ),
    );
    await expect(registry.setShadow(fed, 10, 'medium')).rejects.toBeInstanceOf(ConflictError);
    expect(await registry.findServing()).toMatchObject({ canary: { id: judged.id }, shadow: undefined });
    expect((await registry.get(fed)).status).toBe('candidate');
    expect((await registry.history(100, 0)).total).toBe(events);
  });

  it('still changes roles beside a served version whose stored spec no longer parses', async () => {
    const { production, canary } = await registry.findServing();
    await moduleRef
      .get(DataSource)
      .query(`UPDATE model_versions SET spec = '{"features": 5}' WHERE id = $1`, [production!.id]);
    await expect(registry.archive(canary!.id, 'medium')).resolves.toMatchObject({ event: { action: 'archive' } });
    expect((await registry.findServing()).canary).toBeUndefined();
  });

  it('changes roles while an event batch naming a served version is under way, without a deadlock', async () => {
    const db = moduleRef.get(DataSource);
    const [production, next] = [await register(8), await register(9)];
    await registry.setCanary(production.id, 10, undefined, 'medium');
    await registry.promote(production.id, undefined, 'medium');
    const batch = db.createQueryRunner();
    await batch.connect();
    await batch.startTransaction();
    try {
      // As EventRepository.insertNew begins: the shared side of the served-set lock.
      await batch.query('SELECT pg_advisory_xact_lock_shared($1)', [SERVED_SET_LOCK_KEY]);
      const change = registry.setCanary(next.id, 10, undefined, 'medium');
      // The change has locked the served versions' rows and waits for the batch.
      for (let waited = 0; ; waited += 20) {
        const [{ waiting }] = await db.query(
          `SELECT count(*)::int AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
        );
        if (waiting > 0) break;
        if (waited > 10_000) throw new Error('the change never waited for the batch');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // An event of production: its foreign key reads (FOR KEY SHARE) the row the change holds.
      await batch.query(
        `INSERT INTO events (event_id, user_id, item_id, model_version_id, labels, occurred_at)
         VALUES ('medium-deadlock', 'u1', 'i1', $1, '{}', now())`,
        [production.id],
      );
      await batch.commitTransaction();
      expect((await change).canary?.id).toBe(next.id);
    } finally {
      if (batch.isTransactionActive) await batch.rollbackTransaction();
      await batch.release();
    }
  });
});
