import { DataSource } from 'typeorm';

import { dataSourceOptions } from '@app/db';

import { startApis, UNBOUNDED_ADMISSION_ENV, type AppProcess } from './fixtures/app.process';
import { seedModelVersion, tinyArtifact } from './fixtures/model.fixture';
import { propagated } from './fixtures/propagation.fixture';

const TOKEN = 'multi-process-token';

async function score(port: number, userId: string): Promise<{ status: number; modelVersion?: number }> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, itemIds: ['i-1', 'i-2', 'i-3'] }),
  });
  const body = (await response.json()) as { modelVersion?: number };
  return { status: response.status, modelVersion: body.modelVersion };
}

type Scores = Record<string, Record<string, number>>;

/** Each item's task scores for u-1. */
async function itemScores(port: number, itemIds: string[]): Promise<Scores> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'u-1', itemIds }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { items: { itemId: string; scores: Record<string, number> }[] };
  return Object.fromEntries(body.items.map((item) => [item.itemId, item.scores]));
}

async function putItem(port: number, id: string, features: Record<string, string | number>): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/items/${id}/features`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ features }),
  });
  expect(response.status).toBe(200);
}

async function metric(port: number, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${series} (\\S+)$`, 'm').exec(text)?.[1]);
}

async function admin(port: number, path: string, body: object = {}): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/admin/models${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  return response.status;
}

describe('two API processes (e2e: real processes, Postgres and Redis)', () => {
  let dataSource: DataSource;
  let apis: { process: AppProcess; port: number }[] = [];

  beforeAll(async () => {
    dataSource = await new DataSource(dataSourceOptions({ DATABASE_URL: process.env.DATABASE_URL! })).initialize();
    await dataSource.query('TRUNCATE model_versions, rollout_events RESTART IDENTITY CASCADE');
    await seedModelVersion(dataSource, 'production', { seed: 1 });
    await seedModelVersion(dataSource, 'candidate', { seed: 2 });
    // A poll far beyond the test: the switch can only come from the models:changed notice.
    apis = await startApis(2, { ...UNBOUNDED_ADMISSION_ENV, ADMIN_TOKEN: TOKEN, MODEL_POLL_SECONDS: '3600' });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(apis.map(({ process }) => process.stop()));
    await dataSource.query('TRUNCATE model_versions, rollout_events RESTART IDENTITY CASCADE');
    await dataSource.destroy();
  });

  it('both switch after one promote made through one of them, while requests keep succeeding', async () => {
    for (const { port } of apis) expect(await score(port, 'u-1')).toEqual({ status: 200, modelVersion: 1 });

    // Traffic on both processes for the whole rollout: every answer must be a 200 from version 1 or 2.
    let traffic = true;
    const answers: { status: number; modelVersion?: number }[] = [];
    const load = apis.map(async ({ port }, i) => {
      for (let n = 0; traffic; n++) answers.push(await score(port, `user-${i}-${n}`));
    });

    const [first, second] = apis;
    expect(await admin(first.port, '/2/canary', { percent: 100 })).toBe(200);
    expect(await admin(first.port, '/promote')).toBe(200);
    const deadline = Date.now() + 20_000;
    const served = async () => Promise.all(apis.map(({ port }) => score(port, 'u-1')));
    let now = await served();
    while (now.some((a) => a.modelVersion !== 2) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      now = await served();
    }
    // The switch itself can take only milliseconds: keep the traffic up until it has also run on the new version.
    while (answers.filter((a) => a.modelVersion === 2).length < 10 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    traffic = false;
    await Promise.all(load);

    expect(now).toEqual([
      { status: 200, modelVersion: 2 },
      { status: 200, modelVersion: 2 },
    ]);
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.filter((a) => a.status !== 200 || (a.modelVersion !== 1 && a.modelVersion !== 2))).toEqual([]);
    expect(second.process.output()).toMatch(/serving production v2/);
    // Versions with an ONNX graph are served from the artifact's header: TensorFlow.js is never loaded.
    for (const { process } of apis) expect(process.output()).not.toMatch(/TensorFlow\.js loaded/);
  }, 60_000);

  it('registers an uploaded artifact, which starts tfjs on demand in a process that serves without it', async () => {
    const { artifact } = await tinyArtifact(3);
    expect(await admin(apis[0].port, '', { artifact: artifact.toString('base64') })).toBe(201);
  }, 60_000);

  it("a feature write through one process reaches every process's scores within the bound, past their in-memory rows", async () => {
    const [first, second] = apis;
    await putItem(first.port, 'mp-1', { item_genre: 'g1', item_price: 10 });
    await putItem(first.port, 'mp-2', { item_genre: 'g2', item_price: 20 });
    const ids = ['mp-1', 'mp-2'];
    const before: Scores[] = [];
    for (const { port } of apis) {
      before.push(await itemScores(port, ids));
      expect(await itemScores(port, ids)).toEqual(before.at(-1)); // this one comes from memory
      expect(await metric(port, 'item_row_cache_hits_total')).toBeGreaterThanOrEqual(2);
    }

    await putItem(second.port, 'mp-1', { item_genre: 'g4', item_price: 500 });
    for (const [i, { port }] of apis.entries()) {
      const after = await propagated(`one Redis: a write through the second on process ${i}`, before[i], () =>
        itemScores(port, ids),
      );
      expect(after['mp-1']).not.toEqual(before[i]['mp-1']);
      expect(after['mp-2']).toEqual(before[i]['mp-2']);
    }
  }, 60_000);
});
