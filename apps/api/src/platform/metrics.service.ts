import cluster from 'node:cluster';
import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds, fine below 20 ms where a ranking request is meant to stay. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/**
 * The Prometheus registry of this app and its HTTP metrics; feature modules add their own metrics to `registry`.
 * One registry per app rather than prom-client's global one, because the tests build several apps in one process.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  private readonly validationDuration = new Histogram({
    name: 'validation_duration_seconds',
    help: 'Time to validate the body of a hot-path route (fast check, class-validator when it fails), by DTO',
    labelNames: ['dto'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    // Processes of one cluster answer on one port: the label tells their series apart.
    if (cluster.isWorker) this.registry.setDefaultLabels({ process: String(cluster.worker!.id) });
    collectDefaultMetrics({ register: this.registry });
  }

  /** `route` is the route pattern (never the raw URL, whose ids would make one series per entity). */
  observeHttp(method: string, route: string, statusCode: number, seconds: number): void {
    this.httpDuration.observe({ method, route, status_code: statusCode }, seconds);
  }

  observeValidation(dto: string, seconds: number): void {
    this.validationDuration.observe({ dto }, seconds);
  }

  /**
   * A counter labelled by outcome, every outcome's series there (at 0) from the start, so that a rate over one is
   * never missing before its first event. Returns the function that counts.
   */
  outcomeCounter<O extends string>(
    name: string,
    help: string,
    outcomes: readonly O[],
  ): (outcome: O, by?: number) => void {
    const counter = new Counter({ name, help, labelNames: ['outcome'] as const, registers: [this.registry] });
    for (const outcome of outcomes) counter.inc({ outcome }, 0);
    return (outcome, by = 1) => counter.inc({ outcome }, by);
  }

  /** A gauge without labels whose value is read when it is scraped (a size, a state), never set on the way. */
  scrapedGauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
