import { availableParallelism } from 'node:os';

import { loadConfig } from './app-config';

describe('loadConfig', () => {
  it('fills every default from an empty environment', () => {
    expect(loadConfig({})).toEqual({
      NODE_ENV: 'development',
      API_HOST: '0.0.0.0',
      API_PORT: 3000,
      API_PROCESSES: 1,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
      DATABASE_READ_MAX_LAG_SECONDS: 30,
      REDIS_URL: 'redis://127.0.0.1:6379',
      ADMIN_TOKEN: 'change-me',
      LOG_LEVEL: 'log',
      MODEL_POLL_SECONDS: 30,
      BODY_LIMIT_BYTES: 1048576,
      ADMIN_BODY_LIMIT_BYTES: 16777216,
      MODEL_MAX_PARAMETERS: 100_000_000,
      RATE_LIMIT_PER_MINUTE: 60000,
      FEATURE_CACHE_TTL_SECONDS: 3600,
      FEATURE_NEGATIVE_CACHE_TTL_SECONDS: 60,
      FEATURE_NEGATIVE_CACHE_PER_REQUEST: 50,
      HTTP_REQUEST_TIMEOUT_MS: 30_000,
      HTTP_HEADERS_TIMEOUT_MS: 10_000,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: 5_000,
      INFERENCE_THREADS: availableParallelism(),
      ITEM_ROW_CACHE_ENTRIES: 100_000,
      ITEM_ROW_CACHE_TTL_SECONDS: 60,
      USER_ROW_FALLBACK_ENTRIES: 10_000,
      SCORE_DEADLINE_MS: 200,
      SCORE_DEADLINE_MAX_MS: 5_000,
      SCORE_MAX_ROWS_IN_FLIGHT: 50_000,
      WORKER_CONCURRENCY: 1,
      TRAINING_LOCK_SECONDS: 30,
      TRAINING_STALLED_INTERVAL_SECONDS: 30,
      TRAINING_MIN_ROWS: 200,
      INT8_SERVING: 'auto',
      AUTO_CANARY: true,
      CANARY_PERCENT: 10,
      TRAINING_GATE_METRIC: 'auc',
      TRAINING_AUC_TOLERANCE: 0.005,
      TRAINING_RMSE_TOLERANCE: 0.01,
      TRAINING_GATE_MIN_LABELS: 30,
      RETRAIN_CRON: '0 3 * * *',
      RETRAIN_WINDOW_DAYS: 7,
      RETRAIN_WARM_START: false,
      RETRAIN_ENABLED: true,
      RETRAIN_INCREMENTAL_CRON: '0 * * * *',
      RETRAIN_INCREMENTAL_ENABLED: false,
      RETRAIN_INCREMENTAL_EPOCHS: 1,
      RETRAIN_INCREMENTAL_REPLAY: 0.2,
      TRAINING_REPLAY_DAYS: 30,
      TRAINING_REFIT: 'full',
      PREDICTION_LOG_SAMPLE: 0.1,
      PREDICTION_LOG_BUFFER_ROWS: 100_000,
      PREDICTION_LOG_BATCH_ROWS: 5_000,
      PREDICTION_LOG_FLUSH_MS: 1_000,
      PREDICTION_LOG_RETENTION_DAYS: 14,
      SHADOW_QUEUE_SIZE: 64,
      REPEATABLE_JOBS_CHECK_SECONDS: 30,
      ROLLOUT_POLICY_CHECK_SECONDS: 60,
      SCHEDULE_MIN_INTERVAL_SECONDS: 60,
      LIVE_METRICS_MAX_ROWS: 10_000,
      LIVE_AGGREGATION_SECONDS: 5,
      LIVE_AGGREGATION_LAG_SECONDS: 10,
      LIVE_LATE_JOIN_SECONDS: 300,
    });
  });

  it('reads REDIS_CLUSTER_NODES as host:port entries and names each bad one', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,[::1]:7002' }).REDIS_CLUSTER_NODES).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(loadConfig({}).REDIS_CLUSTER_NODES).toBeUndefined();
    for (const bad of ['redis-a', 'redis-a:0', 'redis-a:70000', 'redis://a:7000', 'a:7000,,b:7001'])
      expect(() => loadConfig({ REDIS_CLUSTER_NODES: bad })).toThrow(/REDIS_CLUSTER_NODES: entry \d must be host:port/);
  });

  it("takes a cluster's credentials and TLS with REDIS_CLUSTER_NODES only, a username only with a password", () => {
    const nodes = '10.0.0.1:7000';
    expect(
      loadConfig({
        REDIS_CLUSTER_NODES: nodes,
        REDIS_CLUSTER_USERNAME: 'mmoe',
        REDIS_CLUSTER_PASSWORD: 's3cret',
        REDIS_CLUSTER_TLS: 'true',
      }),
    ).toMatchObject({ REDIS_CLUSTER_USERNAME: 'mmoe', REDIS_CLUSTER_PASSWORD: 's3cret', REDIS_CLUSTER_TLS: true });
    expect(loadConfig({ REDIS_CLUSTER_NODES: nodes })).not.toHaveProperty('REDIS_CLUSTER_TLS');
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: nodes, REDIS_CLUSTER_TLS: 'yes please' })).toThrow(
      /REDIS_CLUSTER_TLS/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: nodes, REDIS_CLUSTER_USERNAME: 'mmoe' })).toThrow(
      /REDIS_CLUSTER_USERNAME: needs REDIS_CLUSTER_PASSWORD/,
    );
    for (const setting of ['REDIS_CLUSTER_USERNAME', 'REDIS_CLUSTER_PASSWORD', 'REDIS_CLUSTER_TLS'])
      expect(() => loadConfig({ [setting]: 'true' })).toThrow(
        new RegExp(`${setting}: applies only with REDIS_CLUSTER_NODES`),
      );
    // Listed with the other problems of the environment.
    expect(() => loadConfig({ REDIS_CLUSTER_PASSWORD: 'x', API_PORT: '0' })).toThrow(
      /API_PORT[^]*REDIS_CLUSTER_PASSWORD/,
    );
  });

  it('reads REDIS_CLUSTER_NAT_MAP as announced=reachable address pairs, with a cluster only, and names a bad entry', () => {
    const nodes = '127.0.0.1:7000';
    expect(
      loadConfig({
        REDIS_CLUSTER_NODES: nodes,
        REDIS_CLUSTER_NAT_MAP:
          '172.18.0.2:6379=127.0.0.1:7000, 172.18.0.3:6379 = redis-b:7001,[fd00::4]:6379=[::1]:7002',
      }).REDIS_CLUSTER_NAT_MAP,
    ).toEqual({
      '172.18.0.2:6379': { host: '127.0.0.1', port: 7000 },
      '172.18.0.3:6379': { host: 'redis-b', port: 7001 },
      'fd00::4:6379': { host: '::1', port: 7002 },
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: nodes })).not.toHaveProperty('REDIS_CLUSTER_NAT_MAP');
    for (const bad of ['172.18.0.2:6379', '172.18.0.2:6379=', 'a:1=b:2=c:3', 'a:1=b:0', 'a:1=b:2,,c:3=d:4', 'a=b:2'])
      expect(() => loadConfig({ REDIS_CLUSTER_NODES: nodes, REDIS_CLUSTER_NAT_MAP: bad })).toThrow(
        /REDIS_CLUSTER_NAT_MAP: entry \d must be announced-host:port=reachable-host:port/,
      );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: nodes, REDIS_CLUSTER_NAT_MAP: 'a:1=b:2,c:3=d:4,a:1=e:5' })).toThrow(
      /REDIS_CLUSTER_NAT_MAP: entry 3 maps an address mapped before/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NAT_MAP: 'a:1=b:2' })).toThrow(
      /REDIS_CLUSTER_NAT_MAP: applies only with REDIS_CLUSTER_NODES/,
    );
  });

  it('takes an optional DATABASE_READ_URL, a postgres URL, and a positive lag bound', () => {
    expect(loadConfig({ DATABASE_READ_URL: 'postgres://reader@replica:5432/app' })).toMatchObject({
      DATABASE_READ_URL: 'postgres://reader@replica:5432/app',
      DATABASE_READ_MAX_LAG_SECONDS: 30,
    });
    expect(loadConfig({}).DATABASE_READ_URL).toBeUndefined();
    expect(() => loadConfig({ DATABASE_READ_URL: 'mysql://replica/app' })).toThrow(/DATABASE_READ_URL/);
    expect(() => loadConfig({ DATABASE_READ_MAX_LAG_SECONDS: '0' })).toThrow(/DATABASE_READ_MAX_LAG_SECONDS/);
  });

  it('names a prediction-log sample outside [0, 1]', () => {
    expect(loadConfig({ PREDICTION_LOG_SAMPLE: '1' }).PREDICTION_LOG_SAMPLE).toBe(1);
    expect(() => loadConfig({ PREDICTION_LOG_SAMPLE: '1.5' })).toThrow(/PREDICTION_LOG_SAMPLE/);
  });

  it('takes a score deadline no longer than its maximum, naming it otherwise', () => {
    expect(loadConfig({ SCORE_DEADLINE_MS: '500', SCORE_DEADLINE_MAX_MS: '500' }).SCORE_DEADLINE_MS).toBe(500);
    expect(() => loadConfig({ SCORE_DEADLINE_MS: '6000' })).toThrow(
      /SCORE_DEADLINE_MS: must not exceed SCORE_DEADLINE_MAX_MS/,
    );
    expect(() => loadConfig({ SCORE_DEADLINE_MS: '0' })).toThrow(/SCORE_DEADLINE_MS/);
  });

  it('takes a 5- or 6-field RETRAIN_CRON, names a bad one, and reads RETRAIN_ENABLED as a boolean', () => {
    expect(loadConfig({ RETRAIN_CRON: '*/10 * * * * *', SCHEDULE_MIN_INTERVAL_SECONDS: '10' }).RETRAIN_CRON).toBe(
      '*/10 * * * * *',
    );
    expect(() => loadConfig({ RETRAIN_CRON: '61 * * * *' })).toThrow(/RETRAIN_CRON: must be a cron expression/);
    expect(loadConfig({ RETRAIN_ENABLED: 'false' }).RETRAIN_ENABLED).toBe(false);
    expect(() => loadConfig({ RETRAIN_ENABLED: 'maybe' })).toThrow(/RETRAIN_ENABLED/);
  });

  it("reads the full retrain's warm start and epochs, and names a bad one", () => {
    expect(loadConfig({ RETRAIN_WARM_START: 'true', RETRAIN_EPOCHS: '2' })).toMatchObject({
      RETRAIN_WARM_START: true,
      RETRAIN_EPOCHS: 2,
    });
    expect(loadConfig({})).not.toHaveProperty('RETRAIN_EPOCHS');
    for (const bad of ['0', '1.5', 'x']) expect(() => loadConfig({ RETRAIN_EPOCHS: bad })).toThrow(/RETRAIN_EPOCHS/);
  });

  it('refuses a retraining cron whose runs come closer than SCHEDULE_MIN_INTERVAL_SECONDS, naming the gap', () => {
    expect(() => loadConfig({ RETRAIN_CRON: '* * * * * *' })).toThrow(
      /RETRAIN_CRON: runs 1 s apart .*below the minimum of 60 s/,
    );
    expect(() => loadConfig({ RETRAIN_INCREMENTAL_CRON: '*/30 * * * * *' })).toThrow(
      /RETRAIN_INCREMENTAL_CRON: runs 30 s apart/,
    );
    expect(() => loadConfig({ RETRAIN_CRON: '*/5 * * * *', SCHEDULE_MIN_INTERVAL_SECONDS: '3600' })).toThrow(
      /RETRAIN_CRON: runs 300 s apart .*below the minimum of 3600 s/,
    );
    expect(loadConfig({ RETRAIN_CRON: '* * * * *' }).RETRAIN_CRON).toBe('* * * * *');
    expect(loadConfig({ RETRAIN_CRON: '* * * * * *', SCHEDULE_MIN_INTERVAL_SECONDS: '1' }).RETRAIN_CRON).toBe(
      '* * * * * *',
    );
    expect(() => loadConfig({ SCHEDULE_MIN_INTERVAL_SECONDS: '0' })).toThrow(/SCHEDULE_MIN_INTERVAL_SECONDS/);
  });

  it('reads TRAINING_GATE_METRIC as auc or gauc, naming it otherwise', () => {
    expect(loadConfig({ TRAINING_GATE_METRIC: 'gauc' }).TRAINING_GATE_METRIC).toBe('gauc');
    expect(() => loadConfig({ TRAINING_GATE_METRIC: 'ndcg' })).toThrow(/TRAINING_GATE_METRIC/);
  });

  it('reads TRAINING_REFIT as full, all or none, naming it otherwise', () => {
    expect(loadConfig({ TRAINING_REFIT: 'none' }).TRAINING_REFIT).toBe('none');
    expect(() => loadConfig({ TRAINING_REFIT: 'incremental' })).toThrow(/TRAINING_REFIT/);
  });

  it('returns a frozen object with typed values', () => {
    const config = loadConfig({ API_PORT: '8080', MMOE_BACKEND: 'wasm' });
    expect(config.API_PORT).toBe(8080);
    expect(config.MMOE_BACKEND).toBe('wasm');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats empty strings as unset', () => {
    const config = loadConfig({ API_PORT: '', MMOE_BACKEND: '' });
    expect(config.API_PORT).toBe(3000);
    expect(config.MMOE_BACKEND).toBeUndefined();
  });

  it('names a bad port', () => {
    expect(() => loadConfig({ API_PORT: 'eighty' })).toThrow(/API_PORT/);
    expect(() => loadConfig({ API_PORT: '70000' })).toThrow(/API_PORT/);
  });

  it('reads numbers written in decimal only: blank, hex and exponent forms are mistakes', () => {
    for (const value of [' ', '0x50', '0b11', '1e3', '5 ', '--5'])
      expect(() => loadConfig({ API_PORT: value })).toThrow('API_PORT: must be a decimal number');
    expect(() => loadConfig({ PREDICTION_LOG_SAMPLE: ' ' })).toThrow(/PREDICTION_LOG_SAMPLE: must be a decimal/);
    expect(
      loadConfig({ API_PORT: '8080', PREDICTION_LOG_SAMPLE: '.5', RETRAIN_INCREMENTAL_REPLAY: '0.25' }),
    ).toMatchObject({ API_PORT: 8080, PREDICTION_LOG_SAMPLE: 0.5, RETRAIN_INCREMENTAL_REPLAY: 0.25 });
  });

  it('bounds intervals and timers: no busy loop, no delay past what a timer can wait', () => {
    for (const name of ['MODEL_POLL_SECONDS', 'REPEATABLE_JOBS_CHECK_SECONDS', 'LIVE_AGGREGATION_SECONDS'])
      for (const value of ['0.001', '3000000']) expect(() => loadConfig({ [name]: value })).toThrow(name);
    expect(() => loadConfig({ TRAINING_LOCK_SECONDS: '0.0001' })).toThrow('TRAINING_LOCK_SECONDS');
    expect(() => loadConfig({ SCORE_DEADLINE_MS: '3000000000', SCORE_DEADLINE_MAX_MS: '3000000000' })).toThrow(
      'SCORE_DEADLINE_MAX_MS',
    );
    expect(() => loadConfig({ INFERENCE_THREADS: '400' })).toThrow('INFERENCE_THREADS');
    expect(() => loadConfig({ FEATURE_CACHE_TTL_SECONDS: '5000000000000000' })).toThrow('FEATURE_CACHE_TTL_SECONDS');
    expect(loadConfig({ MODEL_POLL_SECONDS: '0.2' }).MODEL_POLL_SECONDS).toBe(0.2);
  });

  it('names settings that contradict one another', () => {
    for (const [env, name] of [
      [
        { HTTP_HEADERS_TIMEOUT_MS: '40000', HTTP_REQUEST_TIMEOUT_MS: '30000' },
        'HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS',
      ],
      [
        { PREDICTION_LOG_BATCH_ROWS: '200000' },
        'PREDICTION_LOG_BATCH_ROWS: must not exceed PREDICTION_LOG_BUFFER_ROWS',
      ],
      [{ BODY_LIMIT_BYTES: '33554432' }, 'BODY_LIMIT_BYTES: must not exceed ADMIN_BODY_LIMIT_BYTES'],
    ] as const)
      expect(() => loadConfig(env)).toThrow(name);
  });

  it('takes server URLs that name a server, and a Redis database from 0 to 15', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://' })).toThrow('REDIS_URL: must name a host');
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:0' })).toThrow('REDIS_URL: must name a port');
    expect(() => loadConfig({ DATABASE_URL: 'postgres://h:0/db' })).toThrow('DATABASE_URL: must name a port');
    for (const db of ['99', '-1', 'abc', '1.5', '0x1'])
      expect(() => loadConfig({ REDIS_URL: `redis://127.0.0.1:6379/${db}` })).toThrow(
        'REDIS_URL: must end in a database number from 0 to 15',
      );
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/13' }).REDIS_URL).toBe('redis://127.0.0.1:6379/13');
  });

  it('lists every bad variable at once', () => {
    let message = '';
    try {
      loadConfig({ NODE_ENV: 'production', API_PORT: '0', MMOE_BACKEND: 'cuda', REDIS_URL: 'http://cache' });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of ['API_PORT', 'MMOE_BACKEND', 'REDIS_URL', 'ADMIN_TOKEN']) expect(message).toContain(name);
  });

  it('requires a real ADMIN_TOKEN in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/ADMIN_TOKEN/);
    expect(() => loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'change-me' })).toThrow(/ADMIN_TOKEN/);
    expect(() => loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'x' })).toThrow(
      /ADMIN_TOKEN: must be a real secret of at least 32/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'k'.repeat(31) })).toThrow(/ADMIN_TOKEN/);
    expect(() => loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: `${'k'.repeat(20)} ${'k'.repeat(20)}` })).toThrow(
      /without whitespace/,
    );
    const secret = 'k3'.repeat(16);
    expect(loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: secret }).ADMIN_TOKEN).toBe(secret);
  });

  it('does not echo the rejected values, which may be secrets', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db/app' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});
