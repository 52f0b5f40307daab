import { Logger } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';

import type { AppConfig } from '@app/config';

/** What Redis answers a connection whose credentials it does not take. */
const AUTH_REFUSED = /^(NOAUTH|WRONGPASS|NOPERM)\b/;
/** A TLS handshake that failed for want of the right setting or certificate, rather than for want of a server. */
const TLS_FAILED = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;
/** A node that does not answer a connect within this is left to the degraded mode, as at any other time. */
const CHECK_TIMEOUT_MS = 2000;

/**
 * Everything a connection to one node takes besides its address: on a cluster, REDIS_CLUSTER_USERNAME, _PASSWORD and
 * _TLS, the same for every node, those the client discovers included (a single Redis takes them from REDIS_URL).
 */
export function clusterNodeOptions(config: AppConfig): RedisOptions {
  return {
    username: config.REDIS_CLUSTER_USERNAME,
    password: config.REDIS_CLUSTER_PASSWORD,
    ...(config.REDIS_CLUSTER_TLS ? { tls: {} } : {}),
  };
}

/**
 * Connects once to REDIS_URL's server, or to every seed of REDIS_CLUSTER_NODES at once, and throws, naming the
 * setting, if one refuses the credentials or the TLS handshake fails: a client with the wrong password would
 * otherwise reconnect forever, the service up and every Redis use failing. A node that does not answer is no reason
 * to refuse to start (the service runs degraded until Redis is back); one that closes the connection without a word,
 * as a TLS port does to a plain client (and a proxy with no server behind it), is logged with the setting to check.
 */
export async function checkRedisCredentials(config: AppConfig, logger = new Logger('Redis')): Promise<void> {
  const cluster = config.REDIS_CLUSTER_NODES;
  const outcomes = await Promise.all(
    cluster
      ? cluster.map(({ host, port }) =>
          probe(
            `${host}:${port}`,
            (options) => new Redis({ host, port, ...clusterNodeOptions(config), ...options }),
            true,
          ),
        )
      : [probe(new URL(config.REDIS_URL).host, (options) => new Redis(config.REDIS_URL, options), false)],
  );
  const standalone = outcomes.find((outcome) => outcome?.kind === 'standalone');
  // ioredis's cluster client would retry "cluster support disabled" forever: the setting is wrong, not the server.
  if (standalone)
    throw new Error(
      `Redis at ${standalone.node} is not a cluster node (${standalone.reason}): REDIS_CLUSTER_NODES names the seeds ` +
        'of a Redis Cluster; a single Redis is REDIS_URL',
    );
  const refused = outcomes.find((outcome) => outcome?.kind === 'auth' || outcome?.kind === 'tls');
  if (refused) {
    const settings =
      refused.kind === 'auth'
        ? cluster
          ? 'REDIS_CLUSTER_PASSWORD (and REDIS_CLUSTER_USERNAME for an ACL user)'
          : "REDIS_URL's user and password (redis://user:password@host:port)"
        : cluster
          ? 'REDIS_CLUSTER_TLS (a private CA: NODE_EXTRA_CA_CERTS)'
          : 'REDIS_URL (rediss:// for TLS; a private CA: NODE_EXTRA_CA_CERTS)';
    throw new Error(`Redis at ${refused.node} refused the connection (${refused.reason}): check ${settings}`);
  }
  const closed = outcomes.find((outcome) => outcome?.kind === 'closed');
  if (closed)
    logger.warn(
      `Redis at ${closed.node} closed the connection unanswered: if it takes TLS only, set ` +
        (cluster ? 'REDIS_CLUSTER_TLS=true' : 'REDIS_URL to rediss://…'),
    );
  // A plain Redis given a TLS handshake waits for the rest of a command that never comes: no error, no answer.
  const tls = cluster ? config.REDIS_CLUSTER_TLS === true : config.REDIS_URL.startsWith('rediss:');
  const silent = outcomes.find((outcome) => outcome?.kind === 'silent');
  if (silent && tls)
    logger.warn(
      `Redis at ${silent.node} did not answer a TLS handshake within ${CHECK_TIMEOUT_MS} ms: if it takes plain TCP, ` +
        (cluster ? 'leave REDIS_CLUSTER_TLS unset' : 'use redis:// in REDIS_URL') +
        '; the service starts without Redis meanwhile',
    );
}

interface Outcome {
  /**
   * Refused our credentials, failed the TLS handshake, closed the connection without a reply, answered as a Redis
   * without cluster mode where a cluster's seed was expected, or did not answer in time.
   */
  kind: 'auth' | 'tls' | 'closed' | 'standalone' | 'silent';
  node: string;
  reason: string;
}

/** What went wrong with a connection made by `connect` with the probe's options, if anything but no answer did. */
async function probe(
  node: string,
  connect: (options: RedisOptions) => Redis,
  clusterSeed: boolean,
): Promise<Outcome | undefined> {
  const client = connect({
    connectionName: 'credentials-check',
    lazyConnect: true,
    retryStrategy: null,
    maxRetriesPerRequest: 0,
    connectTimeout: CHECK_TIMEOUT_MS,
  });
  let found: Outcome | undefined;
  let answered = false;
  const classify = (error: Error & { code?: unknown }) => {
    answered ||= error.name === 'ReplyError';
    if (AUTH_REFUSED.test(error.message)) found ??= { kind: 'auth', node, reason: error.message };
    else if (typeof error.code === 'string' && TLS_FAILED.test(error.code))
      found ??= { kind: 'tls', node, reason: error.message };
  };
  let connected = false;
  client.once('connect', () => (connected = true));
  client.once('close', () => {
    if (connected && !answered && client.status !== 'ready') found ??= { kind: 'closed', node, reason: 'closed' };
  });
  client.on('error', classify);
  let timer: NodeJS.Timeout | undefined;
  try {
    // Bounded as a whole: a server that accepts the connection and never answers (hung) holds no start-up.
    await Promise.race([
      client
        .connect()
        .then(() => client.ping())
        .then(async () => {
          if (!clusterSeed) return;
          const info = await client.cluster('INFO').catch((e: Error) => e);
          if (info instanceof Error && /cluster support disabled/i.test(info.message))
            found ??= { kind: 'standalone', node, reason: info.message };
        }),
      new Promise((resolve) => {
        timer = setTimeout(() => {
          found ??= { kind: 'silent', node, reason: `no answer within ${CHECK_TIMEOUT_MS} ms` };
          resolve(undefined);
        }, CHECK_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    classify(error as Error);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
  return found;
}
