import type { HttpAdapterHost } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { loadConfig } from '@app/config';
import type { InferenceEstimate, Scorer } from '@app/mmoe/serving';

import type { ModelLifecycleService } from '../models/model-lifecycle.service';
import { MetricsService } from '../platform/metrics.service';
import { ScoringAdmission } from './scoring.admission';

type OnRequest = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void;

/**
 * The admission in front of a fake engine whose queue is `waitMs` long and whose pass costs `msPerRow` per row: what
 * the onRequest hook decides before a body is read, and the rows it asked the engine to price.
 */
function admissionWith(engine: { waitMs: number; msPerRow: number }) {
  const priced: number[] = [];
  const scorer = {
    estimate: (rows: number): InferenceEstimate => {
      priced.push(rows);
      return { waitMs: engine.waitMs, passMs: rows * engine.msPerRow };
    },
  } as unknown as Scorer;
  const lifecycle = { current: () => ({ production: { scorer } }) } as unknown as ModelLifecycleService;
  let onRequest: OnRequest | undefined;
  const fastify = { addHook: (_name: string, hook: OnRequest) => (onRequest = hook) };
  const adapterHost = { httpAdapter: { getInstance: () => fastify } } as unknown as HttpAdapterHost;
  const admission = new ScoringAdmission(
    loadConfig({ SCORE_DEADLINE_MS: '200', SCORE_MAX_ROWS_IN_FLIGHT: '1000' }),
    lifecycle,
    adapterHost,
    new MetricsService(),
  );
  admission.onModuleInit();
  /** The status a score request with these headers gets on arrival: 503, or undefined when its body is read. */
  const arrive = (headers: Record<string, string>, method = 'POST', url = '/v1/score'): number | undefined => {
    let status: number | undefined;
    const reply = {
      code: (code: number) => ((status = code), reply),
      header: () => reply,
      send: () => reply,
    } as unknown as FastifyReply;
    const request = { method, routeOptions: { url }, headers } as unknown as FastifyRequest;
    onRequest!(request, reply, () => {});
    return status;
  };
  return { admission, arrive, priced };
}

describe('ScoringAdmission on arrival', () => {
  // 500 candidates in 6,000 bytes: 12 bytes a candidate.
  const body = (candidates: number) => ({ 'content-length': String(candidates * 12) });

  it("prices the request's own candidates, estimated from its size by the bodies seen, before reading it", () => {
    // Queue 90 ms, 0.02 ms a row: a 500-row request needs 2 × (90 + 10) = 200 ms, within its 200 ms; 600 rows do not.
    const { admission, arrive, priced } = admissionWith({ waitMs: 90, msPerRow: 0.02 });
    admission.observeBody(6000, 500);
    expect(arrive(body(500))).toBeUndefined();
    expect(arrive(body(600))).toBe(503);
    expect(priced).toEqual([500, 600]);
  });

  it('prices no candidates before it has seen a body, or without a Content-Length', () => {
    const { admission, arrive, priced } = admissionWith({ waitMs: 90, msPerRow: 0.02 });
    expect(arrive(body(600))).toBeUndefined();
    admission.observeBody(6000, 500);
    expect(arrive({})).toBeUndefined();
    expect(arrive({ 'content-length': 'many' })).toBeUndefined();
    expect(priced).toEqual([0, 0, 0]);
  });

  it('rounds its estimate down, and caps it at the most candidates a request may have', () => {
    const { admission, arrive, priced } = admissionWith({ waitMs: 0, msPerRow: 0 });
    admission.observeBody(6000, 500);
    arrive({ 'content-length': '6011' });
    arrive({ 'content-length': String(50 * 1024 * 1024) });
    expect(priced).toEqual([500, 1000]);
  });

  it('leaves the rows-in-flight bound to the check after the body: a guess could only be too high there', () => {
    const { admission, arrive } = admissionWith({ waitMs: 1, msPerRow: 0 });
    admission.observeBody(6000, 500);
    const scorer = { estimate: () => ({ waitMs: 1, passMs: 0 }) } as unknown as Scorer;
    expect(admission.admit(scorer, 900, performance.now() + 200)).toBeUndefined();
    // 900 + 500 would pass SCORE_MAX_ROWS_IN_FLIGHT: refused after its body, not on arrival.
    expect(arrive(body(500))).toBeUndefined();
    expect(admission.admit(scorer, 500, performance.now() + 200)).toEqual({
      reason: 'overloaded',
      retryAfterSeconds: 1,
    });
  });

  it('learns from running means of bytes and candidates: one padded body moves it by its share of the bytes', () => {
    const { admission, arrive, priced } = admissionWith({ waitMs: 0, msPerRow: 0 });
    for (let i = 0; i < 100; i++) admission.observeBody(6000, 500);
    // One candidate padded to 1 MiB: a mean of ratios would take 5 % of 1,048,576 bytes a candidate (52 kB, every
    // body then ~0 candidates); means of each: (6,000 + 5 % of 1,042,576) / (500 - 5 % of 499) bytes a candidate.
    admission.observeBody(1024 * 1024, 1);
    arrive(body(500));
    expect(priced[0]).toBe(Math.floor((6000 * (500 - 0.05 * 499)) / (6000 + 0.05 * (1024 * 1024 - 6000))));
    expect(priced[0]).toBeGreaterThan(40);
  });

  it('ignores what is not a score request, and one that opts in to a degraded answer', () => {
    const { admission, arrive, priced } = admissionWith({ waitMs: 1000, msPerRow: 1 });
    admission.observeBody(6000, 500);
    expect(arrive(body(500), 'POST', '/v1/events')).toBeUndefined();
    expect(arrive(body(500), 'GET')).toBeUndefined();
    expect(arrive({ ...body(500), 'x-allow-degraded': 'true' })).toBeUndefined();
    expect(arrive({ ...body(500), 'x-allow-degraded': 'false' })).toBe(503);
    expect(priced).toEqual([500]);
  });
});
