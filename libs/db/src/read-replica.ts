import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@app/config';

import { dataSourceOptions } from './data-source.options';
import { isDatabaseUnavailable } from './database-unavailable';

/** How often the replica's reachability and lag are checked. */
const PROBE_MS = 1000;
/** A replica that does not answer a connect within this is taken for down (the primary answers the read instead). */
const REPLICA_CONNECT_TIMEOUT_MS = 2000;
/** Until the first check: reads go to the primary, and that check's outcome is logged, whatever it is. */
const NOT_CHECKED = 'not checked yet';
/** A hot standby cancels a query that holds back the replay too long: the primary answers it instead. */
const CONFLICT_WITH_RECOVERY = '40001';

/** Why a read that tolerates lag went to the primary although a replica is configured. */
export type ReplicaFallback = 'unusable' | 'failed' | 'not_replayed';
export const REPLICA_FALLBACKS: readonly ReplicaFallback[] = ['unusable', 'failed', 'not_replayed'];

/** What this process's reads that tolerate lag did so far, for /metrics. */
export interface ReplicaReads {
  /** Answered by the replica, and by the primary (every one of them when there is no replica). */
  served: { replica: number; primary: number };
  /** Of those the primary answered with a replica configured, why: unusable then (down, lagging), failed, not replayed. */
  fallbacks: Record<ReplicaFallback, number>;
}

/** A primary WAL position and when it was seen. */
interface Sample {
  at: number;
  lsn: bigint;
}

/**
 * The optional read replica (DATABASE_READ_URL): a Postgres streaming replica for the heavy reads that tolerate lag
 * (training windows, live metrics, training reports). A read goes to the replica while it answers and has replayed
 * everything the primary had written DATABASE_READ_MAX_LAG_SECONDS ago; otherwise, and whenever a read there fails for
 * want of the replica, to the primary. Each change between the two is logged once.
 *
 * Lag is measured by WAL position rather than by replay timestamps (which stand still on an idle primary): every
 * second the primary's current position is noted, and the replica lags by the age of the oldest noted position it
 * has not replayed yet.
 */
@Injectable()
export class ReadReplica implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('ReadReplica');
  private replica?: DataSource;
  /** Why reads go to the primary now; undefined while the replica serves them. */
  private unusable?: string = NOT_CHECKED;
  private readonly samples: Sample[] = [];
  /** The lag the last check measured (undefined: none yet, or the replica did not answer). */
  private lag?: number;
  readonly reads: ReplicaReads = {
    served: { replica: 0, primary: 0 },
    fallbacks: { unusable: 0, failed: 0, not_replayed: 0 },
  };
  private timer?: NodeJS.Timeout;
  private probing?: Promise<void>;

  constructor(
    @InjectDataSource() private readonly primary: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Whether a replica is configured, and whether reads go to it now. */
  get state(): 'none' | 'up' | 'down' {
    if (!this.config.DATABASE_READ_URL) return 'none';
    return this.unusable === undefined ? 'up' : 'down';
  }

  /** Seconds the replica lagged at the last check, if it answered (see the class comment for how it is measured). */
  get lagSeconds(): number | undefined {
    return this.lag;
  }

  /** The first check is waited for (a connect timeout at most), so that reads go to a healthy replica from the start. */
  async onModuleInit(): Promise<void> {
    if (!this.config.DATABASE_READ_URL) return;
    await this.probe();
    this.timer = setInterval(() => void this.probe(), PROBE_MS).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.probing;
    await this.replica?.destroy().catch(() => undefined);
  }

  /**
   * `query` on the replica while it is usable, else on the primary. A read the replica cannot answer (down, or a
   * conflict with its replay) runs on the primary. `missing`: a replica's result that may only mean it has not caught
   * up with a recent write (a row not found), which the primary is asked for again.
   */
  async read<T>(query: (db: DataSource) => Promise<T>, missing?: (result: T) => boolean): Promise<T> {
    const replica = this.unusable === undefined ? this.replica : undefined;
    if (replica) {
      try {
        const result = await query(replica);
        if (!missing?.(result)) {
          this.reads.served.replica++;
          return result;
        }
        this.reads.fallbacks.not_replayed++;
      } catch (error) {
        if (isDatabaseUnavailable(error)) this.markUnreachable(error);
        else if ((error as { code?: unknown }).code !== CONFLICT_WITH_RECOVERY) throw error;
        this.reads.fallbacks.failed++;
      }
    } else if (this.config.DATABASE_READ_URL) this.reads.fallbacks.unusable++;
    const result = await query(this.primary);
    this.reads.served.primary++;
    return result;
  }

  private probe(): Promise<void> {
    this.probing ??= this.check().finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async check(): Promise<void> {
    const now = Date.now();
    try {
      const [{ lsn }] = (await this.primary.query('SELECT pg_current_wal_lsn()::text AS lsn')) as { lsn: string }[];
      this.samples.push({ at: now, lsn: parseLsn(lsn) });
      // Positions older than the bound need not be told apart: one of them unreplayed is lag enough.
      if (this.samples.length > this.config.DATABASE_READ_MAX_LAG_SECONDS * (1000 / PROBE_MS) + 2) this.samples.shift();
    } catch {
      // The primary is down: nothing to compare with this time (reads fail there anyway).
    }
    try {
      const replica = await this.connected();
      const [{ replayed, recovery }] = (await replica.query(
        'SELECT pg_last_wal_replay_lsn()::text AS replayed, pg_is_in_recovery() AS recovery',
      )) as { replayed: string | null; recovery: boolean }[];
      if (!recovery || replayed === null) {
        this.lag = undefined;
        return this.markUnusable('it is not a streaming replica');
      }
      const position = parseLsn(replayed);
      while (this.samples.length > 0 && this.samples[0].lsn <= position) this.samples.shift();
      const lagSeconds = (this.lag = this.samples.length > 0 ? (now - this.samples[0].at) / 1000 : 0);
      if (lagSeconds > this.config.DATABASE_READ_MAX_LAG_SECONDS)
        return this.markUnusable(`lagging ${lagSeconds.toFixed(0)} s (DATABASE_READ_MAX_LAG_SECONDS)`);
      if (this.unusable !== undefined) this.logger.log('read replica in use');
      this.unusable = undefined;
    } catch (error) {
      this.markUnreachable(error);
    }
  }

  /** The replica's data source, connected now if it was not (it may have been down at boot). */
  private async connected(): Promise<DataSource> {
    if (this.replica) return this.replica;
    const replica = new DataSource({
      ...dataSourceOptions({ DATABASE_URL: this.config.DATABASE_READ_URL! }),
      connectTimeoutMS: REPLICA_CONNECT_TIMEOUT_MS,
    });
    try {
      await replica.initialize();
    } catch (error) {
      await replica.destroy().catch(() => undefined);
      throw error;
    }
    return (this.replica = replica);
  }

  /** Down, or the connection lost: no lag to tell until it answers again. */
  private markUnreachable(error: unknown): void {
    this.lag = undefined;
    this.markUnusable(`unreachable: ${(error as Error).message}`);
  }

  private markUnusable(reason: string): void {
    // Logged once per spell: a reason that merely changes wording (lag growing) is not news.
    if (this.unusable === undefined || this.unusable === NOT_CHECKED)
      this.logger.warn(`read replica not used (${reason}); reads go to the primary`);
    this.unusable = reason;
  }
}

/** A pg_lsn (`16/B374D848`: the high and low 32 bits in hex) as a number that compares as positions do. */
function parseLsn(lsn: string): bigint {
  const [high, low] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}
