import { InitialSchema1763790000000 } from './1763790000000-initial-schema';
import { VersionFusion1764600000000 } from './1764600000000-version-fusion';
import { LiveTraffic1764610000000 } from './1764610000000-live-traffic';
import { EventWeight1764620000000 } from './1764620000000-event-weight';
import { ServingPrecision1764630000000 } from './1764630000000-serving-precision';
import { TrainingSchedule1764640000000 } from './1764640000000-training-schedule';
import { EventsUserTime1764700000000 } from './1764700000000-events-user-time';
import { IncrementalSchedule1764700000001 } from './1764700000001-incremental-schedule';
import { LiveAggregates1764710000000 } from './1764710000000-live-aggregates';
import { SkipsAndBackfills1764720000000 } from './1764720000000-skips-and-backfills';
import { FedListHeads1764730000000 } from './1764730000000-fed-list-heads';
import { SkipOncePerJob1764730000001 } from './1764730000001-skip-once-per-job';
import { EventIngestXid1764740000000 } from './1764740000000-event-ingest-xid';
import { FullRetrainWarmStart1764750000000 } from './1764750000000-full-retrain-warm-start';
import { LiveWatermarkXid1764760000000 } from './1764760000000-live-watermark-xid';
import { LiveLabelledUser1764770000000 } from './1764770000000-live-labelled-user';
import { LiveLateWatermark1764780000000 } from './1764780000000-live-late-watermark';

/** Every migration, in order; imported (not globbed) so that the compiled apps carry them. */
export const MIGRATIONS = [
  InitialSchema1763790000000,
  VersionFusion1764600000000,
  LiveTraffic1764610000000,
  EventWeight1764620000000,
  ServingPrecision1764630000000,
  TrainingSchedule1764640000000,
  EventsUserTime1764700000000,
  IncrementalSchedule1764700000001,
  LiveAggregates1764710000000,
  SkipsAndBackfills1764720000000,
  FedListHeads1764730000000,
  SkipOncePerJob1764730000001,
  EventIngestXid1764740000000,
  FullRetrainWarmStart1764750000000,
  LiveWatermarkXid1764760000000,
  LiveLabelledUser1764770000000,
  LiveLateWatermark1764780000000,
];
