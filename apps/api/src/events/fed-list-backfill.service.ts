import { Injectable, Logger } from '@nestjs/common';

import { EventRepository, type EventFeed } from '@app/db';

import { FeatureStoreService } from '../features/feature-store.service';

/**
 * Fills the event-fed lists that a newly served version declares from the events stored before: without it, a user's
 * list would hold only what they did after the version was served (their next positive event rebuilds it whole).
 * Once per feed for the cluster (EventRepository.backfill claims it), in the background of the ingest that first
 * sees the feed, one at a time per process; each batch of users rebuilt is invalidated in the feature cache.
 */
@Injectable()
export class FedListBackfill {
  private readonly logger = new Logger(FedListBackfill.name);
  /** Feeds this process knows filled (by it or another): checked no more. */
  private readonly done = new Set<string>();
  private running?: Promise<void>;

  constructor(
    private readonly events: EventRepository,
    private readonly features: FeatureStoreService,
  ) {}

  /** Starts filling the feeds not known filled, unless a fill runs already (the next call sees to the rest). */
  ensure(feeds: readonly EventFeed[]): void {
    const pending = feeds.filter((f) => !this.done.has(JSON.stringify(f)));
    if (pending.length === 0 || this.running) return;
    this.running = this.fill(pending)
      .catch((e: Error) => this.logger.warn(`event-fed lists not backfilled (${e.message}); retried at a later batch`))
      .finally(() => (this.running = undefined));
  }

  /** Resolves when the fill under way (if any) is over (a test waits for it). */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async fill(feeds: readonly EventFeed[]): Promise<void> {
    for (const feed of feeds) {
      const outcome = await this.events.backfill(feed, (ids) => this.features.invalidate('user', ids));
      if (outcome === 'busy') continue; // another process fills it; looked at again at a later batch
      if (outcome !== 'filled')
        this.logger.log(`backfilled "${feed.feature}" for ${outcome.users} users from past events`);
      this.done.add(JSON.stringify(feed));
    }
  }
}
