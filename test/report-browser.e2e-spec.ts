import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { chromium, type Browser, type Page } from 'playwright-core';

import { initBackend, MultiTaskModel, parseModelSpec, RawTable, Rng } from '@app/mmoe';
import { renderTrainingReport, REPORT_CONTENT_SECURITY_POLICY } from '@app/mmoe/report/training-report';

import { createApiApp } from './api-app.factory';
import { CHROMIUM_INSTALL_TIMEOUT_MS, ensureChromium } from './fixtures/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/**
 * Opens `url` and collects what a person would see go wrong: console errors (a Content-Security-Policy violation is
 * one), page errors, failed requests. `serve` answers requests in the browser itself, before any network.
 */
async function open(
  browser: Browser,
  url: string,
  serve?: (page: Page) => Promise<unknown>,
): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await serve?.(page);
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  await page.goto(url, { waitUntil: 'load' });
  return { page, problems };
}

/** Every matching element is laid out with a non-zero size. */
async function sizes(page: Page, selector: string): Promise<{ width: number; height: number }[]> {
  return page
    .locator(selector)
    .evaluateAll((nodes) =>
      nodes.map((n) => ({ width: n.getBoundingClientRect().width, height: n.getBoundingClientRect().height })),
    );
}

describe('training report and API docs in a real browser (headless Chromium)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-browser-'));
  let browser: Browser;
  let app: NestFastifyApplication;

  beforeAll(async () => {
    // Installs Chromium with apt when missing, or fails saying how to get it: never a silent skip.
    browser = await chromium.launch({ executablePath: ensureChromium(), args: CHROMIUM_ARGS });
  }, CHROMIUM_INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('renders every chart of a generated report with a non-zero size, offline, under its CSP, without console errors', async () => {
    await initBackend('wasm');
    const spec = parseModelSpec({
      features: [
        { name: 'topic', type: 'categorical', embeddingDim: 2 },
        { name: 'interest', type: 'numeric' },
      ],
      tasks: [
        { name: 'click', label: 'clicked', type: 'binary' },
        { name: 'watch', label: 'seconds', type: 'regression' },
      ],
      model: { experts: 4, expertUnits: [8], towerUnits: [4], gate: { type: 'noisy-top-k', k: 2 } },
      training: { epochs: 3, batchSize: 64, learningRate: 0.02, seed: 3, calibration: 'platt' },
    });
    const rng = new Rng(4);
    const table = new RawTable(spec);
    for (let i = 0; i < 800; i++) {
      const topic = rng.int(4);
      const interest = rng.gaussian();
      table.add({
        topic: `t${topic}`,
        interest,
        clicked: rng.next() < 1 / (1 + Math.exp(-(2 * interest + (topic === 1 ? 1 : -1)))) ? 1 : 0,
        seconds: 60 + 15 * interest + rng.gaussian(),
      });
    }
    const { model, summary } = await MultiTaskModel.train(spec, table);
    const path = join(dir, 'report.html');
    try {
      writeFileSync(
        path,
        renderTrainingReport({
          title: 'browser e2e',
          spec,
          parameters: model.parameterCount(),
          backend: 'wasm',
          rows: { train: 720, validation: summary.valid.examples },
          training: summary,
          evaluatedOn: 'validation',
          ...summary.valid,
        }),
      );
    } finally {
      model.dispose();
    }

    // Self-contained: no script, no stylesheet or image link, nothing that could fetch.
    expect(readFileSync(path, 'utf8')).not.toMatch(/<script|<link|<img|\bsrc=|\bhref=|@import|url\(/i);
    // Served as the API serves it (GET /admin/models/:id/report): its CSP must leave every chart and style working.
    const { page, problems } = await open(browser, 'http://report.test/report.html', (p) =>
      p.route('http://report.test/**', (route) =>
        route.fulfill({
          contentType: 'text/html; charset=utf-8',
          headers: { 'content-security-policy': REPORT_CONTENT_SECURITY_POLICY },
          body: readFileSync(path, 'utf8'),
        }),
      ),
    );
    const charts = await sizes(page, 'svg.chart');
    // Loss, one metric per task (2), gate utilisation and expert load (top-k), one reliability diagram.
    expect(charts).toHaveLength(6);
    for (const box of charts) {
      expect(box.width).toBeGreaterThan(100);
      expect(box.height).toBeGreaterThan(50);
    }
    expect(await page.locator('svg.chart polyline').count()).toBeGreaterThanOrEqual(5);
    expect(await page.locator('svg.chart rect[fill^="rgba"]').count()).toBe(2 * 4 * 2); // 2 heatmaps × tasks × experts
    await expect(page.title()).resolves.toBe('browser e2e');
    const shot = join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
  });

  it('serves /docs (Swagger UI) that renders the API without console errors', async () => {
    app = await createApiApp();
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as { port: number };
    const { page, problems } = await open(browser, `http://127.0.0.1:${port}/docs`);
    await page.locator('.opblock-summary-path').first().waitFor({ timeout: 30_000 });
    const paths = await page.locator('.opblock-summary-path').allInnerTexts();
    expect(paths).toEqual(expect.arrayContaining(['/v1/score', '/admin/models/{id}/report']));
    const icons = await sizes(page, 'svg');
    expect(icons.length).toBeGreaterThan(0);
    expect(icons.some((b) => b.width > 0 && b.height > 0)).toBe(true);
    await page.screenshot({ path: join(dir, 'docs.png') });
    expect(problems).toEqual([]);
  });
});
