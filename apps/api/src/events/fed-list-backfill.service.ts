import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';

import { EventRepository, feedKey, type EventFeed } from '@app/db';
import { servedEventFeeds } from '@app/mmoe/serving';

import { FeatureStoreService } from '../features/feature-store.service';
import { MetricsService } from '../platform/metrics.service';
import { ProductionSpecSource } from './production-spec.source';

/**
 * How often the feeds served are looked at again: those a fill left (another process at it, or failed), and those
 * known filled that a change has marked to fill since.
 */
const CHECK_MS = 60_000;

type Outcome = 'filled' | 'already_filled' | 'busy' | 'failed';

/**
 * Fills the event-fed lists that a newly served version declares from the events stored before: without it, a user's
 * list would hold only what they did after the version was served (their next positive event rebuilds it whole).
 * Started when this process starts serving a version (at boot, and at each change of the versions served), and at
 * each ingest as a fallback; once per feed for the cluster (EventRepository.backfill claims it, so processes that
 * race fill it once) for as long as some version serves it (a rollout change that stops serving a feed forgets its
 * fill, so that serving it again fills it again); one fill at a time per process; each batch of users rebuilt is
 * invalidated in the feature cache. Every minute the feeds served that the database records as to fill are filled:
 * one another process was filling, or whose fill failed (a claim left by a process that died is taken again after 10
 * minutes), and one known filled that a change marked to fill again (a change that stopped serving it and one that
 * served it again, which this process loaded as one reload with nothing changed, told it nothing). Logged, and counted in /metrics
 * (`fed_list_backfills_total` by outcome, `fed_list_backfill_users_total`).
 */
@Injectable()
export class FedListBackfill implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(FedListBackfill.name);
  /** Feeds this process knows filled (by it or another): checked no more. */
  private readonly done = new Set<string>();
  private running?: Promise<void>;
  private check?: NodeJS.Timeout;
  private stopped = false;
  private readonly count: (outcome: Outcome) => void;
  private readonly countUsers: (outcome: 'rebuilt', by: number) => void;

  constructor(
    private readonly events: EventRepository,
    private readonly features: FeatureStoreService,
    private readonly served: ProductionSpecSource,
    metrics: MetricsService,
  ) {
    this.count = metrics.outcomeCounter(
      'fed_list_backfills_total',
      'Backfills of event-fed lists this process looked at, by outcome: filled by it, found filled, busy in another process, failed',
      ['filled', 'already_filled', 'busy', 'failed'],
    );
    this.countUsers = metrics.outcomeCounter(
      'fed_list_backfill_users_total',
      'Users whose event-fed lists a backfill of this process rebuilt',
      ['rebuilt'],
    );
  }

  /**
   * After the first load of the served versions (ModelsModule's init): from now on, each change starts a fill. What
   * this process knew filled is asked again: the change that serves a feed again has marked it to fill
   * (syncFeedFills), whatever was recorded of it before (one query per feed for those still filled).
   */
  onApplicationBootstrap(): void {
    this.served.onChange(() => {
      this.done.clear();
      this.ensure();
    });
    this.ensure();
    this.check = setInterval(() => void this.recheck(), CHECK_MS).unref();
  }

  /** A fill under way stops at its next batch and hands its claim back (another process takes it at once). */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearInterval(this.check);
    await this.running;
  }

  /**
   * Starts filling the feeds (by default those of the versions served now) not known filled, unless a fill runs
   * already (when it ends, it looks at the feeds served then).
   */
  ensure(feeds: readonly EventFeed[] = this.servedFeeds()): void {
    const pending = feeds.filter((f) => !this.done.has(feedKey(f)));
    if (pending.length === 0 || this.running || this.stopped) return;
    this.running = this.fill(pending).finally(() => {
      this.running = undefined;
      this.next(pending);
    });
  }

  /** Resolves when the fill under way (if any), and those it started when it ended, are over (a test waits for it). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * After a fill of `looked`: the feeds served since are filled now; those it left unfilled (busy in another process,
   * or failed) wait for the next check.
   */
  private next(looked: readonly EventFeed[]): void {
    if (this.stopped) return;
    const seen = new Set(looked.map(feedKey));
    const fresh = this.servedFeeds().filter((f) => !this.done.has(feedKey(f)) && !seen.has(feedKey(f)));
    if (fresh.length > 0) this.ensure(fresh);
  }

  /**
   * The feeds served that the database records as to fill (marked again by a change, or left by a fill another
   * process was at or that failed) are filled. Only those: a feed this process still serves but whose record a change
   * it has not loaded yet deleted is no longer served, and filling it would write its lists over the new feed's.
   */
  private async recheck(): Promise<void> {
    if (this.running || this.stopped) return;
    let reset: EventFeed[];
    try {
      reset = await this.events.unfilled(this.servedFeeds());
    } catch (e) {
      this.logger.warn(`event-fed lists not checked (${(e as Error).message}); checked again in a minute`);
      return;
    }
    for (const feed of reset) this.done.delete(feedKey(feed));
    this.ensure(reset);
  }

  private servedFeeds(): EventFeed[] {
    return servedEventFeeds(this.served.served().map((v) => v.spec));
  }

  private async fill(feeds: readonly EventFeed[]): Promise<void> {
    for (const feed of feeds) {
      const started = Date.now();
      try {
        const outcome = await this.events.backfill(feed, {
          claimed: (users) => this.logger.log(`backfilling "${feed.feature}" for ${users} users from past events`),
          rebuilt: async (ids) => {
            await this.features.invalidate('user', ids);
            this.countUsers('rebuilt', ids.length);
          },
          stopping: () => this.stopped,
        });
        if (this.stopped) return;
        if (outcome === 'busy') {
          this.count('busy');
          this.logger.log(`"${feed.feature}": another process is backfilling it; looked at again in a minute`);
          continue;
        }
        this.count(outcome === 'filled' ? 'already_filled' : 'filled');
        if (outcome !== 'filled')
          this.logger.log(
            `backfilled "${feed.feature}" for ${outcome.users} users in ${((Date.now() - started) / 1000).toFixed(1)} s`,
          );
        this.done.add(feedKey(feed));
      } catch (e) {
        this.count('failed');
        this.logger.warn(
          `event-fed list "${feed.feature}" not backfilled (${(e as Error).message}); retried in a minute`,
        );
      }
    }
  }
}
