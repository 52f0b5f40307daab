import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';
import { normalQuantile, Rng } from '@app/mmoe';
import type { PolicyDecision } from '@app/registry';

import { startApis, UNBOUNDED_ADMISSION_ENV, type AppProcess } from './fixtures/app.process';
import { seedModelVersion, tinyItem, tinyOutcome, tinyUser, type TinyModelOptions } from './fixtures/model.fixture';

const TOKEN = 'policy-test-token';
/** Few users, each with a strong propensity of their own that no model sees: the case the policy used to get wrong. */
const USERS = 300;
const USER_EFFECT = Array.from({ length: USERS }, (_, u) => 1.5 * new Rng(10_000 + u).gaussian());
const ITEMS = Array.from({ length: 60 }, (_, i) => `item-${i}`);
/** The tiny model as the other tests train it (offline click AUC ≈ 0.55), and trained longer (≈ 0.74). */
const WEAK: Omit<TinyModelOptions, 'seed'> = {};
const GOOD: Omit<TinyModelOptions, 'seed'> = { rows: 6000, epochs: 8 };
/** Trained on shuffled labels: learns nothing (≈ 0.5). */
const BAD: Omit<TinyModelOptions, 'seed'> = { ...GOOD, shuffledLabels: true };
/** The policy; a test still undecided after maxEvents labelled canary predictions ends inconclusive. */
const POLICY = {
  confidence: 0.95,
  minEvents: 300,
  minUsers: 100,
  tolerance: 0.01,
  maxEvents: 4000,
  tasks: { click: {} },
};

interface RolloutEvent {
  action: string;
  actor: string;
  fromVersionId: number | null;
  toVersionId: number | null;
  evidence: PolicyDecision | null;
}

/**
 * The automatic rollout policy on the real stack: two API processes (each takes policy and live-join ticks from the
 * repeatable jobs), 300 synthetic users with strong user effects who score and then report outcomes drawn from the
 * tiny world, and a canary identical to production, better than it, or deliberately bad.
 */
describe('rollout policy (e2e: real API processes, Postgres, Redis)', () => {
  let dataSource: DataSource;
  let apis: { process: AppProcess; port: number }[] = [];
  const rng = new Rng(2026);
  let round = 0;

  const http = async (port: number, method: string, path: string, body?: object) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: body && JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const history = async (): Promise<RolloutEvent[]> =>
    (await http(apis[0].port, 'GET', '/admin/rollouts?limit=500')).body.items as RolloutEvent[];

  /** One round of traffic: 100 users each score 10 candidates on either process, then report what they did in bulk. */
  async function traffic(): Promise<void> {
    round++;
    const events = await Promise.all(
      Array.from({ length: 100 }, async (_, n) => {
        const user = rng.int(USERS);
        const items = [...new Set(Array.from({ length: 30 }, () => rng.int(ITEMS.length)))].slice(0, 10);
        const scored = await http(apis[n % apis.length].port, 'POST', '/v1/score', {
          userId: `u-${user}`,
          itemIds: items.map((i) => ITEMS[i]),
        });
        // The body says why (a 503 names overload or a store), should this be refused again on a loaded machine.
        if (scored.status !== 200) throw new Error(`score answered ${scored.status}: ${JSON.stringify(scored.body)}`);
        return items.map((item, k) => {
          const outcome = tinyOutcome(tinyUser(user), tinyItem(item), rng, USER_EFFECT[user]);
          return {
            eventId: `${round}:${n}:${k}`,
            userId: `u-${user}`,
            itemId: ITEMS[item],
            requestId: scored.body.requestId as string,
            labels: { click: outcome.clicked, like: outcome.liked },
          };
        });
      }),
    );
    const flat = events.flat();
    for (let i = 0; i < flat.length; i += 500)
      expect(
        (await http(apis[round % 2].port, 'POST', '/v1/events', { events: flat.slice(i, i + 500) })).status,
      ).toBeLessThan(300);
  }

  /** Traffic until the policy has decided on `canary` (promote, reject or inconclusive), bounded in time. */
  async function untilDecided(canary: number): Promise<RolloutEvent> {
    const deadline = Date.now() + 240_000;
    for (;;) {
      const decided = (await history()).find(
        (e) => e.actor === 'policy' && (e.fromVersionId === canary || e.toVersionId === canary),
      );
      if (decided) return decided;
      if (Date.now() > deadline) throw new Error(`no policy decision on v${canary} after ${round} rounds`);
      await traffic();
    }
  }

  async function canaryWithPolicy(id: number): Promise<void> {
    expect((await http(apis[0].port, 'POST', `/admin/models/${id}/canary`, { percent: 50 })).status).toBe(200);
    const set = await http(apis[1].port, 'PUT', `/admin/models/${id}/rollout-policy`, POLICY);
    expect(set.status).toBe(200);
    expect(set.body.event).toMatchObject({
      action: 'policy',
      actor: 'admin',
      toVersionId: id,
      evidence: { policy: POLICY },
    });
  }

  beforeAll(async () => {
    dataSource = await new DataSource(dataSourceOptions({ DATABASE_URL: process.env.DATABASE_URL! })).initialize();
    await dataSource.query('TRUNCATE model_versions, rollout_events, events, prediction_log RESTART IDENTITY CASCADE');
    await seedModelVersion(dataSource, 'production', { seed: 5, training: WEAK });
    apis = await startApis(2, {
      ...UNBOUNDED_ADMISSION_ENV,
      ADMIN_TOKEN: TOKEN,
      MODEL_POLL_SECONDS: '1',
      PREDICTION_LOG_SAMPLE: '1',
      PREDICTION_LOG_FLUSH_MS: '100',
      ROLLOUT_POLICY_CHECK_SECONDS: '1',
      LIVE_AGGREGATION_SECONDS: '1',
      LIVE_AGGREGATION_LAG_SECONDS: '1',
    });
    const users = Array.from({ length: USERS }, (_, i) => ({ id: `u-${i}`, features: { ...tinyUser(i) } }));
    const items = ITEMS.map((id, i) => ({ id, features: { ...tinyItem(i) } }));
    expect((await http(apis[0].port, 'PUT', '/v1/users/features', { entities: users })).status).toBe(200);
    expect((await http(apis[0].port, 'PUT', '/v1/items/features', { entities: items })).status).toBe(200);
  }, 300_000);

  afterAll(async () => {
    await Promise.all(apis.map(({ process }) => process.stop()));
    await dataSource.query('TRUNCATE model_versions, rollout_events, events, prediction_log RESTART IDENTITY CASCADE');
    await dataSource.destroy();
  });

  it('never rejects a byte-identical canary: it is promoted or the test ends inconclusive, recorded', async () => {
    const copy = await seedModelVersion(dataSource, 'candidate', { seed: 5, training: WEAK });
    const [production, canary] = await dataSource.query(
      'SELECT artifact_sha256 FROM model_versions WHERE id IN (1, $1) ORDER BY id',
      [copy],
    );
    expect(canary.artifact_sha256).toBe(production.artifact_sha256);
    await canaryWithPolicy(copy);
    const decision = await untilDecided(copy);
    expect(['promote', 'inconclusive']).toContain(decision.action);
    const [click] = decision.evidence!.tasks;
    // The evidence of a test across users: each side's users, its variance against DeLong's, the bounds.
    expect(decision.evidence).toMatchObject({ test: 'delong-clustered-sequential', confidence: 0.95 });
    expect(decision.evidence!.users.canary).toBeGreaterThanOrEqual(POLICY.minUsers);
    expect(click.canary.designEffect!).toBeGreaterThan(1);
    expect(click.canary.effectiveCount!).toBeLessThan(click.canary.count);
    expect(click.standardError!).toBeGreaterThan(
      Math.hypot(click.canary.iidStandardError!, click.production.iidStandardError!),
    );
    // A confidence sequence: wider than the fixed-sample bound, so that looking every second keeps its error rate.
    expect(click.upperBound! - click.difference!).toBeGreaterThan(normalQuantile(0.95) * click.standardError!);
    expect(click.upperBound!).toBeGreaterThan(-POLICY.tolerance);
    if (decision.action === 'inconclusive') {
      expect(decision).toMatchObject({ actor: 'policy', toVersionId: copy });
      // The canary stays as it was, and the policy records its end once.
      expect((await http(apis[0].port, 'GET', `/admin/models/${copy}`)).body).toMatchObject({
        status: 'canary',
        canaryPercent: 50,
      });
      await traffic();
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect((await history()).filter((e) => e.action === 'inconclusive')).toHaveLength(1);
      expect((await http(apis[0].port, 'DELETE', `/admin/models/${copy}/rollout-policy`)).status).toBe(200);
    }
  }, 300_000);

  it('promotes a better canary, and every process serves it', async () => {
    const good = await seedModelVersion(dataSource, 'candidate', { seed: 7, training: GOOD });
    await canaryWithPolicy(good);
    const decision = await untilDecided(good);
    expect(decision).toMatchObject({ action: 'promote', actor: 'policy', toVersionId: good });
    const [click] = decision.evidence!.tasks;
    expect(click).toMatchObject({ task: 'click', verdict: 'promote' });
    expect(click.lowerBound!).toBeGreaterThan(-POLICY.tolerance);
    expect((await http(apis[0].port, 'GET', `/admin/models/${good}`)).body).toMatchObject({ status: 'production' });
    for (const { port } of apis) {
      const deadline = Date.now() + 30_000;
      while (
        (await http(port, 'POST', '/v1/score', { userId: 'u-1', itemIds: ['item-1'] })).body.modelVersion !== good
      ) {
        if (Date.now() > deadline) throw new Error(`process on ${port} still serves the old version`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }, 300_000);

  it('rolls a bad canary back: canary off, version archived, the evidence in the history', async () => {
    const bad = await seedModelVersion(dataSource, 'candidate', { seed: 6, training: BAD });
    await canaryWithPolicy(bad);
    const decision = await untilDecided(bad);
    expect(decision).toMatchObject({ action: 'reject', actor: 'policy', fromVersionId: bad, toVersionId: null });
    const [click] = decision.evidence!.tasks;
    expect(click).toMatchObject({ task: 'click', verdict: 'reject' });
    expect(click.canary.auc!).toBeLessThan(click.production.auc!);
    expect(click.canary.count).toBeGreaterThanOrEqual(POLICY.minEvents);
    expect(click.upperBound!).toBeLessThan(-POLICY.tolerance);
    expect((await http(apis[0].port, 'GET', `/admin/models/${bad}`)).body).toMatchObject({
      status: 'archived',
      canaryPercent: null,
    });
    // One decision per canary, however many processes took ticks.
    expect((await history()).filter((e) => e.actor === 'policy' && e.fromVersionId === bad)).toHaveLength(1);
  }, 300_000);
});
