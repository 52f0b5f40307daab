import { availableParallelism } from 'node:os';
import { LOG_LEVELS } from '@nestjs/common';
import { z } from 'zod';

import { cronIntervalProblem, cronProblem } from './cron';

/** Good enough for a laptop or a test run; production must bring its own, or anyone could call the admin API. */
const DEV_ADMIN_TOKEN = 'change-me';
/** A production token must be a real secret: long enough not to be guessed, no whitespace to be lost in a header. */
const MIN_ADMIN_TOKEN_LENGTH = 32;

// Listed here rather than imported from @app/mmoe so that neither building nor reading the config pulls in
// TensorFlow.js; the worker's initBackend(config.MMOE_BACKEND) call stops compiling if a name here is unknown there.
const MMOE_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

/**
 * A number from the environment, written in decimal: coercion with Number() read '' and ' ' as 0, '0x50' as 80 and
 * '1e3' as 1000, each a mistake in a setting.
 */
const decimal = <T extends z.ZodType<number>>(schema: T) =>
  z.preprocess((value, ctx) => {
    if (typeof value !== 'string') return value;
    if (/^-?(?:\d+\.?\d*|\.\d+)$/.test(value)) return Number(value);
    ctx.addIssue({ code: 'custom', message: 'must be a decimal number' });
    return z.NEVER;
  }, schema);

/** setTimeout's longest delay (2^31 - 1 ms), in seconds: a longer one fires at once, over and over. */
const MAX_TIMER_SECONDS = 2_147_483;
/** An interval of a process's periodic work: never a busy loop, never past what a timer can wait. */
const interval = (fallback: number) => decimal(z.number().min(0.1).max(MAX_TIMER_SECONDS)).default(fallback);
/** A timeout in whole ms, from `min`, no longer than a timer can wait. */
const timeoutMs = (min: number) =>
  decimal(
    z
      .number()
      .int()
      .min(min)
      .max(MAX_TIMER_SECONDS * 1000),
  );

/** A server's URL: a host, and a port from 1 to 65535 when one is given (`redis://` alone named no server at all). */
const serverUrl = (protocol: RegExp, scheme: string) =>
  z.url({ protocol, error: `must be a ${scheme}:// URL` }).superRefine((value, ctx) => {
    const url = new URL(value);
    if (url.hostname === '') ctx.addIssue({ code: 'custom', message: 'must name a host' });
    if (url.port === '0') ctx.addIssue({ code: 'custom', message: 'must name a port from 1 to 65535, or none' });
  });

/** A cron expression (UTC; 6 fields = with seconds) with its default. */
const cronSetting = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .superRefine((cron, ctx) => {
      const problem = cronProblem(cron);
      if (problem) ctx.addIssue({ code: 'custom', message: `must be a cron expression (${problem})` });
    });

const appConfigSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    API_HOST: z.string().default('0.0.0.0'),
    API_PORT: decimal(z.number().int().min(1).max(65535)).default(3000),
    DATABASE_URL: serverUrl(/^postgres(ql)?$/, 'postgres').default('postgres://postgres@127.0.0.1:5432/postgres'),
    /**
     * Read-only Postgres (a streaming replica) for the heavy reads that tolerate lag: live metrics, training reports
     * (training windows are read in a snapshot of the primary: EventRepository.readInSnapshot).
     * Reads that must see their own writes stay on DATABASE_URL; a replica down or lagging falls back to it.
     */
    DATABASE_READ_URL: serverUrl(/^postgres(ql)?$/, 'postgres').optional(),
    /** Lag beyond which the replica's reads go to the primary instead, until it has caught up. */
    DATABASE_READ_MAX_LAG_SECONDS: decimal(z.number().positive().max(MAX_TIMER_SECONDS)).default(30),
    REDIS_URL: serverUrl(/^rediss?$/, 'redis')
      .refine((value) => /^\/?(?:\d|1[0-5])?$/.test(new URL(value).pathname), {
        // ioredis ran on database 0 after the SELECT of /99 failed, and a SELECT of /abc crashed the process.
        message: 'must end in a database number from 0 to 15, or in none (0)',
      })
      .default('redis://127.0.0.1:6379'),
    /**
     * Seed nodes of a Redis Cluster (`host:port,host:port,…`); when set, every Redis use runs on the cluster and
     * REDIS_URL is ignored.
     */
    REDIS_CLUSTER_NODES: z
      .string()
      .transform((list, ctx) => {
        const nodes = list.split(',').map((entry) => clusterNode(entry.trim()));
        nodes.forEach((node, i) => {
          if (!node) ctx.addIssue({ code: 'custom', message: `entry ${i + 1} must be host:port (port 1–65535)` });
        });
        return nodes.filter((node) => node !== undefined);
      })
      .optional(),
    /**
     * What every connection to a node of the cluster authenticates with (AUTH [username] password; an ACL user when
     * a username is given) and whether it speaks TLS: the node settings a single Redis takes in REDIS_URL
     * (`rediss://user:password@…`). Only with REDIS_CLUSTER_NODES.
     */
    REDIS_CLUSTER_USERNAME: z.string().optional(),
    REDIS_CLUSTER_PASSWORD: z.string().optional(),
    REDIS_CLUSTER_TLS: z.stringbool().optional(),
    /**
     * For nodes that announce addresses this process cannot reach (behind a NAT, in containers):
     * `announced-host:port=reachable-host:port,…`, applied to every node address the cluster names (its slot map,
     * redirections, the pub/sub master). The seeds in REDIS_CLUSTER_NODES are reachable addresses already. Only with
     * REDIS_CLUSTER_NODES.
     */
    REDIS_CLUSTER_NAT_MAP: z
      .string()
      .transform((list, ctx) => {
        const map: Record<string, RedisNode> = {};
        list.split(',').forEach((entry, i) => {
          const [announced, reachable, ...more] = entry.split('=').map((address) => clusterNode(address.trim()));
          if (!announced || !reachable || more.length > 0)
            return ctx.addIssue({
              code: 'custom',
              message: `entry ${i + 1} must be announced-host:port=reachable-host:port (ports 1–65535)`,
            });
          const key = `${announced.host}:${announced.port}`;
          if (key in map) ctx.addIssue({ code: 'custom', message: `entry ${i + 1} maps an address mapped before` });
          map[key] = reachable;
        });
        return map;
      })
      .optional(),
    MMOE_BACKEND: z.enum(MMOE_BACKENDS).optional(),
    ADMIN_TOKEN: z.string().optional(),
    LOG_LEVEL: z.enum(LOG_LEVELS).default('log'),
    /** Fallback for a missed `models:changed` notice: how often each API process compares its models with Postgres. */
    MODEL_POLL_SECONDS: interval(30),
    /** Largest request body in bytes (413 beyond); the admin artifact upload has its own, larger limit. */
    BODY_LIMIT_BYTES: decimal(z.number().int().min(1024)).default(1024 * 1024),
    ADMIN_BODY_LIMIT_BYTES: decimal(z.number().int().min(1024)).default(16 * 1024 * 1024),
    /**
     * Most float32 weights a model artifact may declare (uploads, stored versions, worker jobs): checked against the
     * header before anything is allocated. 100 M is 400 MB of weights, far beyond the examples' models.
     */
    MODEL_MAX_PARAMETERS: decimal(z.number().int().min(1)).default(100_000_000),
    /**
     * API processes behind the one port (node's cluster module; 1 = no cluster). Each loads the served models and
     * follows `models:changed` on its own.
     */
    API_PROCESSES: decimal(z.number().int().min(1).max(64)).default(1),
    /**
     * ONNX Runtime threads per API process that run the network off the event loop (0 = on the event loop). A large
     * request is split across the idle ones.
     */
    INFERENCE_THREADS: decimal(z.number().int().min(0).max(64)).default(() => availableParallelism()),
    /** Requests per minute per client IP (429 beyond); high by default so that it stops abuse, not a benchmark. */
    RATE_LIMIT_PER_MINUTE: decimal(z.number().int().min(1)).default(60_000),
    /** Lifetime of a cached feature vector in Redis; a write through the API is seen at once regardless. */
    FEATURE_CACHE_TTL_SECONDS: decimal(z.number().int().min(1).max(31_536_000)).default(3600),
    /** Lifetime of a cached "no such user/item", so unknown candidates do not hit Postgres on every request. */
    FEATURE_NEGATIVE_CACHE_TTL_SECONDS: decimal(z.number().int().min(1).max(86_400)).default(60),
    /**
     * Most "unknown entity" entries one scoring request may cache: a request of 1,000 made-up ids must not write
     * 1,000 keys (the others are read from Postgres again next time).
     */
    FEATURE_NEGATIVE_CACHE_PER_REQUEST: decimal(z.number().int().min(0)).default(50),
    /**
     * HTTP server timeouts: a whole request (headers and body) must arrive within the first, its headers within the
     * second; an idle keep-alive connection is closed after the third. Slow-body and slow-header clients cannot hold
     * connections open. Node checks the first two every few seconds, so they are approximate.
     */
    HTTP_REQUEST_TIMEOUT_MS: timeoutMs(1000).default(30_000),
    HTTP_HEADERS_TIMEOUT_MS: timeoutMs(1000).default(10_000),
    HTTP_KEEP_ALIVE_TIMEOUT_MS: timeoutMs(100).default(5_000),
    /**
     * Encoded candidate items each API process keeps in memory per served version (0 = none). A write through the
     * feature API drops an item's entries in every process at once; the TTL bounds a missed notice.
     */
    ITEM_ROW_CACHE_ENTRIES: decimal(z.number().int().min(0)).default(100_000),
    ITEM_ROW_CACHE_TTL_SECONDS: decimal(z.number().positive().max(MAX_TIMER_SECONDS)).default(60),
    /**
     * Users whose last read features each API process keeps (0 = none), to score them while neither Redis nor
     * Postgres can answer; never read otherwise. A write through the feature API drops a user in every process.
     */
    USER_ROW_FALLBACK_ENTRIES: decimal(z.number().int().min(0)).default(10_000),
    /**
     * Time a score request has to be answered in, from its arrival: a request that cannot be is refused at once (503
     * with Retry-After), and one whose deadline passes before inference starts is dropped (504), never computed.
     * A request may set its own with the `x-request-deadline-ms` header, up to SCORE_DEADLINE_MAX_MS.
     */
    SCORE_DEADLINE_MS: decimal(z.number().int().min(1).max(600_000)).default(200),
    SCORE_DEADLINE_MAX_MS: decimal(z.number().int().min(1).max(600_000)).default(5_000),
    /**
     * Candidates of admitted score requests an API process holds at most (beyond it: 503, Retry-After); the deadline
     * usually refuses first, this bounds the queue even before any pass has been timed.
     */
    SCORE_MAX_ROWS_IN_FLIGHT: decimal(z.number().int().min(1)).default(50_000),
    /** Training jobs a worker runs at once: one per GPU (a second job on the same device only slows both). */
    WORKER_CONCURRENCY: decimal(z.number().int().min(1).max(64)).default(1),
    /** Bull's job lock: a worker that stops renewing it (killed, hung) loses the job to another after this long. */
    TRAINING_LOCK_SECONDS: decimal(z.number().min(1).max(MAX_TIMER_SECONDS)).default(30),
    /**
     * Data-parallel training threads per job on the wasm backend; overrides the spec's training.threads. Unset: the
     * spec's, else every available core (one per job: run one worker process per host to use them all).
     */
    TRAINING_THREADS: decimal(z.number().int().min(1).max(256)).optional(),
    /** How often each worker looks for jobs whose lock has expired and puts them back in the queue. */
    TRAINING_STALLED_INTERVAL_SECONDS: interval(30),
    /** Fewer usable rows than this fails the job instead of training a meaningless model. */
    TRAINING_MIN_ROWS: decimal(z.number().int().min(2)).default(200),
    /**
     * `auto`: a new version whose int8 holdout check passed on every task is served in int8 from its registration
     * (POST /admin/models/:id/precision switches it back); `off`: every version starts in fp32.
     */
    INT8_SERVING: z.enum(['auto', 'off']).default('auto'),
    /** A trained candidate that passes the evaluation gate goes to canary on its own; off = a human decides. */
    AUTO_CANARY: z.stringbool().default(true),
    CANARY_PERCENT: decimal(z.number().int().min(1).max(100)).default(10),
    /** What the evaluation gate judges binary tasks by: AUC, or GAUC (AUC within each user, weighted by impressions). */
    TRAINING_GATE_METRIC: z.enum(['auc', 'gauc']).default('auc'),
    /** How much worse than production a task may be on the held-out slice: AUC points (absolute), RMSE (relative). */
    TRAINING_AUC_TOLERANCE: decimal(z.number().min(0).max(0.5)).default(0.005),
    TRAINING_RMSE_TOLERANCE: decimal(z.number().min(0).max(10)).default(0.01),
    /**
     * Fewest held-out labels the gate judges a task on: positives and negatives each (binary), rows (regression). At
     * 30 positives a 0.7 AUC's standard error is still about 0.05: this stops calls made on a handful of rows, it does
     * not make the gate's comparison significant (the rollout policy's test on live traffic is).
     */
    TRAINING_GATE_MIN_LABELS: decimal(z.number().int().min(1)).default(30),
    /**
     * Scheduled retraining (a UTC cron; 6 fields = with seconds). The RETRAIN_* settings seed the cluster's schedule
     * when the first process starts; from then on it lives in Postgres and changes through the admin API only.
     */
    RETRAIN_CRON: cronSetting('0 3 * * *'),
    /** A scheduled run trains on the events of the last RETRAIN_WINDOW_DAYS days before it fires. */
    RETRAIN_WINDOW_DAYS: decimal(z.number().positive()).default(7),
    /**
     * A scheduled full retrain starts from production's weights instead of a fresh model, and trains RETRAIN_EPOCHS
     * epochs (unset: the spec's): with incremental warm starts between, a daily one epoch over the window was level
     * with a fresh daily retrain at a fifth of its examples (docs/freshness.md). Off by default: only a fresh model
     * refits the vocabularies and numeric statistics, and undoes whatever a lineage of warm starts has drifted into.
     */
    RETRAIN_WARM_START: z.stringbool().default(false),
    RETRAIN_EPOCHS: decimal(z.number().int().min(1).max(1000)).optional(),
    RETRAIN_ENABLED: z.stringbool().default(true),
    /**
     * The second cadence, seeded like the first: an incremental warm start from production on the events since its
     * data ended, replaying RETRAIN_INCREMENTAL_REPLAY older events per new one, for RETRAIN_INCREMENTAL_EPOCHS epochs.
     * Off by default: it needs a production version trained from events (whose window it continues).
     */
    RETRAIN_INCREMENTAL_CRON: cronSetting('0 * * * *'),
    RETRAIN_INCREMENTAL_REPLAY: decimal(z.number().min(0).max(1)).default(0.2),
    RETRAIN_INCREMENTAL_EPOCHS: decimal(z.number().int().min(1).max(1000)).default(1),
    RETRAIN_INCREMENTAL_ENABLED: z.stringbool().default(false),
    /**
     * How far back (days before its window) an incremental job's replay reaches, at most: older events of its lineage,
     * back to the window of the full retrain it descends from.
     */
    TRAINING_REPLAY_DAYS: decimal(z.number().positive()).default(30),
    /**
     * Which jobs train their candidate one epoch more on the held-out slice after the gate has judged it, so that the
     * version served has learnt from its window's latest events: `full` (every job but an incremental one, whose
     * held-out events its child trains on), `all`, or `none`. A job's `refit` overrides it.
     */
    TRAINING_REFIT: z.enum(['full', 'all', 'none']).default('full'),
    /**
     * The least time between two runs of a retraining schedule (RETRAIN_CRON, RETRAIN_INCREMENTAL_CRON and the admin
     * API's): a 6-field cron can fire every second, and each run is a training job.
     */
    SCHEDULE_MIN_INTERVAL_SECONDS: decimal(z.number().int().min(1)).default(60),
    /** Share (0–1) of production requests whose predictions are logged; canary and shadow predictions always are. */
    PREDICTION_LOG_SAMPLE: decimal(z.number().min(0).max(1)).default(0.1),
    /**
     * Prediction rows held in memory before they are written (2 s of 100 requests/s × 500 candidates, a few tens of
     * MB of response objects); beyond it new rows are dropped (and counted).
     */
    PREDICTION_LOG_BUFFER_ROWS: decimal(z.number().int().min(1)).default(100_000),
    /** Rows per COPY, and how long a row may wait for its batch. */
    PREDICTION_LOG_BATCH_ROWS: decimal(z.number().int().min(1)).default(5_000),
    PREDICTION_LOG_FLUSH_MS: decimal(z.number().int().min(1).max(3_600_000)).default(1_000),
    /** Day partitions of the prediction log older than this are dropped. */
    PREDICTION_LOG_RETENTION_DAYS: decimal(z.number().int().min(1)).default(14),
    /** Requests waiting for the shadow version; a request that finds the queue full is not shadowed (and counted). */
    SHADOW_QUEUE_SIZE: decimal(z.number().int().min(1)).default(64),
    /**
     * How often each process checks that the cluster's repeatable jobs (the retraining schedule, the live-ops chores)
     * are registered in Redis, and registers again those it lost (Redis restarted empty).
     */
    REPEATABLE_JOBS_CHECK_SECONDS: interval(30),
    /** How often one process of the cluster checks the canary against its rollout policy. */
    ROLLOUT_POLICY_CHECK_SECONDS: interval(60),
    /**
     * Labelled predictions per version compare-live's AUC test reads at most (the newest in the window); the metrics
     * themselves come from aggregates, whatever the traffic.
     */
    LIVE_METRICS_MAX_ROWS: decimal(z.number().int().min(100)).default(10_000),
    /**
     * How often one process joins newly stored events with the predictions they label (updating the live metrics and
     * the rollout policy's state), and how often every process writes its serving counts for the policy.
     */
    LIVE_AGGREGATION_SECONDS: interval(5),
    /**
     * How long after it is stored an event is joined: the prediction it labels must be in the log by then (the writer
     * flushes every PREDICTION_LOG_FLUSH_MS), and no transaction storing events may still be open behind it.
     */
    LIVE_AGGREGATION_LAG_SECONDS: decimal(z.number().min(0).max(86_400)).default(10),
    /**
     * How long after it is stored an event is joined a second time, for the predictions that reached the log later than
     * LIVE_AGGREGATION_LAG_SECONDS (a COPY held up, a shadow scored late): at most that late, they are labelled.
     */
    LIVE_LATE_JOIN_SECONDS: decimal(z.number().min(0).max(86_400)).default(300),
  })
  .refine(
    ({ NODE_ENV, ADMIN_TOKEN }) =>
      NODE_ENV !== 'production' ||
      (ADMIN_TOKEN !== undefined && ADMIN_TOKEN.length >= MIN_ADMIN_TOKEN_LENGTH && !/\s/.test(ADMIN_TOKEN)),
    {
      path: ['ADMIN_TOKEN'],
      message: `must be a real secret of at least ${MIN_ADMIN_TOKEN_LENGTH} characters without whitespace when NODE_ENV=production`,
      // Zod skips object-level checks once a field has failed; run this one anyway so the boot error lists every problem.
      when: () => true,
    },
  )
  .superRefine(
    (env, ctx) => {
      // A cluster setting without a cluster would be silently ignored, and a Redis that needs it would then refuse.
      if (env.REDIS_CLUSTER_NODES) {
        if (env.REDIS_CLUSTER_USERNAME !== undefined && env.REDIS_CLUSTER_PASSWORD === undefined)
          ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_USERNAME'], message: 'needs REDIS_CLUSTER_PASSWORD' });
        return;
      }
      for (const setting of ['REDIS_CLUSTER_USERNAME', 'REDIS_CLUSTER_PASSWORD', 'REDIS_CLUSTER_TLS'] as const)
        if (env[setting] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [setting],
            message:
              'applies only with REDIS_CLUSTER_NODES (a single Redis takes it in REDIS_URL: rediss://user:password@host:port)',
          });
      if (env.REDIS_CLUSTER_NAT_MAP !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['REDIS_CLUSTER_NAT_MAP'],
          message: 'applies only with REDIS_CLUSTER_NODES',
        });
    },
    { when: () => true },
  )
  .superRefine((env, ctx) => {
    for (const field of ['RETRAIN_CRON', 'RETRAIN_INCREMENTAL_CRON'] as const) {
      // Zod runs this even when a field failed: an invalid cron has already been named.
      if (cronProblem(env[field]) || !(env.SCHEDULE_MIN_INTERVAL_SECONDS >= 1)) continue;
      const problem = cronIntervalProblem(env[field], env.SCHEDULE_MIN_INTERVAL_SECONDS);
      if (problem) ctx.addIssue({ code: 'custom', path: [field], message: problem });
    }
  })
  .superRefine((env, ctx) => {
    // Settings that bound one another: each pair as the code relies on it.
    const pairs = [
      ['SCORE_DEADLINE_MS', 'SCORE_DEADLINE_MAX_MS'],
      ['HTTP_HEADERS_TIMEOUT_MS', 'HTTP_REQUEST_TIMEOUT_MS'],
      ['PREDICTION_LOG_BATCH_ROWS', 'PREDICTION_LOG_BUFFER_ROWS'],
      ['BODY_LIMIT_BYTES', 'ADMIN_BODY_LIMIT_BYTES'],
      ['LIVE_AGGREGATION_LAG_SECONDS', 'LIVE_LATE_JOIN_SECONDS'],
    ] as const;
    for (const [smaller, larger] of pairs)
      if (env[smaller] > env[larger])
        ctx.addIssue({ code: 'custom', path: [smaller], message: `must not exceed ${larger}` });
  })
  .transform(({ ADMIN_TOKEN = DEV_ADMIN_TOKEN, ...env }) => ({ ...env, ADMIN_TOKEN }));

export type AppConfig = Readonly<z.output<typeof appConfigSchema>>;

export interface RedisNode {
  host: string;
  port: number;
}

/** `host:port` (an IPv6 host in brackets), or undefined when it is not one. */
function clusterNode(entry: string): RedisNode | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(entry);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return undefined;
  return { host: match[1] ?? match[2], port };
}

/**
 * Validates the whole environment once, at boot, so a typo fails the start with every bad variable named
 * instead of surfacing later as a refused connection. Values are never echoed: some of them are secrets.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  // Compose and CI templates pass unset variables as empty strings; those mean "use the default", not "invalid".
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = appConfigSchema.safeParse(given);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  - ${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid environment configuration:\n${problems.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}
