import calculateSlot from 'cluster-key-slot';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';

import { RedisUnavailableError } from './redis-unavailable';

/** One Redis or a Redis Cluster (REDIS_CLUSTER_NODES): the repositories take either and run the same code on both. */
export type RedisClient = Redis | Cluster;

/** Keys one node serves, by slot: each slot's keys can go in one multi-key command, the whole batch in one pipeline. */
export interface NodeBatch {
  /** Names the node (on a cluster, the master and replicas of these slots): what a per-node breaker is keyed by. */
  node: string;
  /** Indexes into the caller's keys, one array per slot. */
  slots: number[][];
}

/**
 * Where `keys` live. On one Redis: one node, one "slot" holding them all, so a caller's MGET stays a single command.
 * On a cluster: by the node the client's slot map names for each key's slot, so that a request costs one round trip
 * per node, sent in parallel. A slot the map does not know yet is left to the client to route.
 */
export function batchByNode(client: RedisClient, keys: readonly string[]): NodeBatch[] {
  if (!client.isCluster) return [{ node: 'redis', slots: [keys.map((_, i) => i)] }];
  const slotMap = (client as Cluster).slots;
  const nodes = new Map<string, Map<number, number[]>>();
  for (let i = 0; i < keys.length; i++) {
    const slot = calculateSlot(keys[i]);
    // Joined as ioredis groups slots for pipelines: one pipeline may only span slots of one such group.
    const node = slotMap[slot]?.join(';') ?? '?';
    let slots = nodes.get(node);
    if (!slots) nodes.set(node, (slots = new Map()));
    const indexes = slots.get(slot);
    if (indexes) indexes.push(i);
    else slots.set(slot, [i]);
  }
  return [...nodes].map(([node, slots]) => ({ node, slots: [...slots.values()] }));
}

/**
 * The nodes batchByNode() groups keys by now, each with the `host:port` of the master that answers for it: the one
 * Redis, or every group of slots of the client's slot map (a master and its replicas).
 */
export function servingNodes(client: RedisClient): { node: string; master: string }[] {
  if (!client.isCluster) {
    const { host, port } = (client as Redis).options;
    return [{ node: 'redis', master: `${host}:${port}` }];
  }
  const groups = new Set<string>();
  for (const nodes of (client as Cluster).slots) if (nodes) groups.add(nodes.join(';'));
  return [...groups].map((node) => ({ node, master: node.split(';')[0] }));
}

/**
 * One MGET per list (each list's keys in one slot), in one round trip: a bare MGET for one list on one Redis, else a
 * pipeline. On a cluster mid-resharding, a slot's keys may be split between its two nodes: its MGET is answered ASK
 * (none left on the source) or TRYAGAIN (some), and a read-only pipeline with one ASK is sent whole to the importing
 * node by ioredis, where the other slots' MGETs are answered MOVED back to the node the slot map names. Each such
 * list is read again key by key, which the node holding each key answers (ioredis follows a single command's ASK and
 * MOVED): nothing fails for a migration, however long it lasts. An entry and its generation may then come from the
 * two nodes at two moments; either one newer than the other only makes them disagree (a miss), as a write between
 * them would. A MOVED elsewhere says the map is out of date (a failover): thrown, as execOrThrow does.
 */
export async function mgetEach(client: RedisClient, lists: string[][]): Promise<(string | null)[][]> {
  if (lists.length === 1 && !client.isCluster) return [await client.mget(lists[0])];
  const pipeline = client.pipeline();
  for (const keys of lists) pipeline.mget(keys);
  const resend = (c: number) => Promise.all(lists[c].map((key) => client.get(key)));
  return (await execOrThrow(client, pipeline, resend, (error) => misrouted(client as Cluster, error))) as (
    string | null
  )[][];
}

/** A write answered ASK: its slot is being migrated, and its key is on the importing node already or is new. */
const asked = (error: Error) => error.message.startsWith('ASK ');

/**
 * A command a migration sent to the wrong node, while the slot map is right: ASK, TRYAGAIN (a multi-key command whose
 * keys the migration has split), MOVED to the master the map names for the slot, or ioredis giving up following them.
 */
function misrouted(cluster: Cluster, error: Error): boolean {
  const [reply, slot, node] = error.message.split(' ');
  if (reply === 'MOVED') return cluster.slots[Number(slot)]?.[0] === node;
  return reply === 'ASK' || reply === 'TRYAGAIN' || error.message.startsWith('Too many Cluster redirections');
}

/**
 * A pipeline's replies; it reports failed commands in its results instead of rejecting, so the first is thrown. On a
 * cluster, a redirection (the slot has moved: a replica took over, or a resharding) is thrown after the client's slot
 * map has been read again, so that the caller's next batchByNode() groups by the new map: ioredis follows the
 * redirection of a single command, and of a pipeline only when all its commands got the same answer, which a
 * pipeline spanning several slots never does.
 *
 * With `resend`, a command whose error `resendOn` accepts (by default a write answered ASK: its slot is being
 * migrated) is sent again on its own by `resend(command index)`, which ioredis follows to the node holding its key
 * (with ASKING for an ASK). Running the pipeline again would not do: the slot map changes only once the migration
 * ends, and until then the same command gets ASK again.
 */
export async function execOrThrow(
  client: RedisClient,
  pipeline: ChainableCommander,
  resend?: (command: number) => Promise<unknown>,
  resendOn: (error: Error) => boolean = asked,
): Promise<unknown[]> {
  let results: [Error | null, unknown][];
  try {
    results = (await pipeline.exec()) ?? [];
  } catch (error) {
    throw await refreshedOn(client, error);
  }
  if (resend)
    results = await Promise.all(
      results.map(async (result, i): Promise<[Error | null, unknown]> =>
        result[0] && resendOn(result[0]) ? [null, await resend(i)] : result,
      ),
    );
  const failed = results.find(([error]) => error);
  if (failed) throw await refreshedOn(client, failed[0]);
  return results.map(([, reply]) => reply);
}

/** `error`, once the slot map has been read again if the error says the client's map is out of date. */
async function refreshedOn(client: RedisClient, error: unknown): Promise<unknown> {
  if (isRedirection(error)) await refreshSlots(client as Cluster).catch(() => undefined);
  return error;
}

/**
 * `run()`, again while a cluster redirects it (execOrThrow has refreshed the slot map by then), at most
 * REDIRECTION_RETRIES times, each after a longer pause: a refresh reads the map from one node picked at random, and
 * just after a failover a node the news has not reached yet still names the old master. An ASK (a slot being
 * migrated) that execOrThrow was not given a way to resend is retried alike, and thrown if the migration outlasts the
 * retries.
 */
export async function followingRedirection<T>(run: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await run();
    } catch (error) {
      if (!isRedirection(error) || retry === REDIRECTION_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, REDIRECTION_PAUSE_MS << retry));
    }
  }
}

/** 50 + 100 + 200 + 400 ms: longer than a cluster takes to spread a failover over its nodes on a loaded machine. */
const REDIRECTION_RETRIES = 4;
const REDIRECTION_PAUSE_MS = 50;

/** Reads the cluster's slot map again, from any node that answers. */
export function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve, reject) => cluster.refreshSlotsCache((error) => (error ? reject(error) : resolve())));
}

/**
 * A cluster's redirection, or ioredis refusing a pipeline whose slots its map no longer puts on one node: it follows a
 * single command's MOVED by moving that slot alone, so a batch made from the map before can span two nodes until
 * the map is read again.
 */
function isRedirection(error: unknown): boolean {
  return (
    error instanceof Error &&
    (/^(MOVED|ASK) /.test(error.message) || error.message.includes('should belong to the same slots allocation group'))
  );
}

/**
 * Throws RedisUnavailableError unless the client is connected. A fail-fast client refuses commands meanwhile anyway,
 * but a cluster client queues a pipeline until it has a slot map, however long that takes.
 */
export function ensureReady(client: RedisClient): void {
  if (client.status !== 'ready') throw new RedisUnavailableError();
}

/**
 * Resolves once every master that serves slots answers a PING (the one Redis, on a single node). The slot map is
 * read again first: a client refreshes it only when a command is redirected or fails, and one whose commands never
 * touched a failed master's slots would otherwise go on naming that master after its replica took over.
 */
export async function pingAll(client: RedisClient): Promise<void> {
  if (!client.isCluster) {
    await client.ping();
    return;
  }
  const cluster = client as Cluster;
  ensureReady(cluster);
  await new Promise<void>((resolve, reject) =>
    cluster.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
  );
  const masters = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const owners = new Set(cluster.slots.map((nodes) => nodes[0]));
  if (owners.size === 0) throw new RedisUnavailableError('redis cluster: no slot map');
  await Promise.all(
    [...owners].map((owner) => {
      const node = masters.get(owner);
      return node ? node.ping() : Promise.reject(new RedisUnavailableError(`redis cluster: ${owner} unreachable`));
    }),
  );
}
