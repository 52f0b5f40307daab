import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';
import { Rng } from '@app/mmoe';
import type { PolicyDecision } from '@app/registry';

import { startApis, type AppProcess } from './fixtures/app.process';
import { seedModelVersion, tinyItem, tinyOutcome, tinyUser, type TinyModelOptions } from './fixtures/model.fixture';

const TOKEN = 'policy-test-token';
const USERS = 400;
const ITEMS = Array.from({ length: 60 }, (_, i) => `item-${i}`);
/** Trained long enough to learn the tiny world (offline click AUC ≈ 0.74); the shuffled-label one learns nothing (≈ 0.5). */
const GOOD: Omit<TinyModelOptions, 'seed'> = { rows: 6000, epochs: 8 };
const BAD: Omit<TinyModelOptions, 'seed'> = { ...GOOD, shuffledLabels: true };
const POLICY = { confidence: 0.95, minEvents: 300, tolerance: 0.05, tasks: { click: {} } };

interface RolloutEvent {
  action: string;
  actor: string;
  fromVersionId: number | null;
  toVersionId: number | null;
  evidence: PolicyDecision | null;
}

/**
 * The automatic rollout policy on the real stack: two API processes (each takes policy ticks from the one repeatable
 * job), synthetic users who score and then report outcomes drawn from the tiny world, and a canary that is either
 * deliberately bad (trained on shuffled labels) or as good as production.
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

  /** One round of traffic: 100 users each score 10 candidates on either process, then report what they did. */
  async function traffic(): Promise<void> {
    round++;
    await Promise.all(
      Array.from({ length: 100 }, async (_, n) => {
        const user = rng.int(USERS);
        const items = [...new Set(Array.from({ length: 30 }, () => rng.int(ITEMS.length)))].slice(0, 10);
        const { port } = apis[n % apis.length];
        const scored = await http(port, 'POST', '/v1/score', {
          userId: `u-${user}`,
          itemIds: items.map((i) => ITEMS[i]),
        });
        expect(scored.status).toBe(200);
        const requestId = scored.body.requestId as string;
        const events = items.map((item, k) => {
          const outcome = tinyOutcome(tinyUser(user), tinyItem(item), rng);
          return {
            eventId: `${round}:${n}:${k}`,
            userId: `u-${user}`,
            itemId: ITEMS[item],
            requestId,
            labels: { click: outcome.clicked, like: outcome.liked },
          };
        });
        expect((await http(port, 'POST', '/v1/events', { events })).status).toBeLessThan(300);
      }),
    );
  }

  /** Traffic until the policy has decided on `canary`, bounded in time. */
  async function untilDecided(canary: number): Promise<RolloutEvent> {
    const deadline = Date.now() + 180_000;
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
    await seedModelVersion(dataSource, 'production', { seed: 5, training: GOOD });
    apis = await startApis(2, {
      ADMIN_TOKEN: TOKEN,
      MODEL_POLL_SECONDS: '1',
      PREDICTION_LOG_SAMPLE: '1',
      PREDICTION_LOG_FLUSH_MS: '100',
      ROLLOUT_POLICY_CHECK_SECONDS: '1',
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
    const version = await http(apis[0].port, 'GET', `/admin/models/${bad}`);
    expect(version.body).toMatchObject({ status: 'archived', canaryPercent: null });
    // One decision, however many processes took ticks.
    expect((await history()).filter((e) => e.actor === 'policy')).toHaveLength(1);
  }, 300_000);

  it('promotes a canary as good as production, with the evidence in the history', async () => {
    const good = await seedModelVersion(dataSource, 'candidate', { seed: 7, training: GOOD });
    await canaryWithPolicy(good);
    const decision = await untilDecided(good);
    expect(decision).toMatchObject({ action: 'promote', actor: 'policy', toVersionId: good });
    const [click] = decision.evidence!.tasks;
    expect(click).toMatchObject({ task: 'click', verdict: 'promote' });
    expect(click.lowerBound).toBeGreaterThan(-POLICY.tolerance);

    expect((await http(apis[0].port, 'GET', `/admin/models/${good}`)).body).toMatchObject({ status: 'production' });
    // Both processes serve the promoted version.
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
});
