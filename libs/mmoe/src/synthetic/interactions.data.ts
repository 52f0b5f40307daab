import { Rng } from '../util/random';
import { dot, gaussianVector } from '../util/vector';

/**
 * A synthetic recommendation log (users, items, impressions with click / like / watch_time) for demos, tests and
 * benchmarks, built so that a multi-task model has something real to learn:
 *
 *   - every user and item has a hidden taste vector; the user's comes partly from country, age and device, the item's
 *     partly from genre, so the observable features predict the labels without giving them away;
 *   - affinity = u·v/√d + item quality + noise drives all three tasks, which are therefore correlated but not equal:
 *     click also reacts to price, freshness, user activity and device × item length; like is only possible after a
 *     click and has its own genre preferences; watch time is a share of the item's length;
 *   - every user has a history of items watched before the log (`user_recent_items`, most recent last), drawn by
 *     the same affinity, so a pooled embedding of it reveals the user's taste;
 *   - over the days, one genre gains clicks and impressions and another loses them, so a model trained on an early
 *     slice is a bit stale on a later one and retraining pays off;
 *   - optionally (`newItems`), part of the catalogue is released over the span: such an item is never shown before
 *     its release, so a model trained earlier has never seen its id;
 *   - optionally (`sessionInterest`), each user's interest in one genre comes and goes within hours: clicks on that
 *     genre are likelier while it lasts, so the user's last clicks predict the next ones better than older ones do;
 *   - optionally (`truth`), each event's click logit without noise, the ceiling any feature could reach.
 *
 * Everything is drawn from `seed`. The world (genre, country, age and device effects), users, items and events come
 * from separate streams, so the same seed gives the same users and items whatever `impressions` or `days` is.
 */

export interface InteractionOptions {
  users: number;
  items: number;
  impressions: number;
  seed: number;
  /** First possible timestamp; events fall in [start, start + days). */
  start: Date;
  days: number;
  /** Dimension of the hidden taste vectors. */
  latentDim?: number;
  /** Share of the items (the last ids) released at uniformly drawn times within the span; 0 by default. */
  newItems?: number;
  /**
   * Per user, a genre of the moment, drawn anew (any genre alike) after exponential times of mean `hours`, adding
   * `strength` to the affinity of its items. Off by default.
   */
  sessionInterest?: {
    hours: number;
    strength: number;
    /** Share of a user's impressions drawn from their genre of the moment (browsing it); 0 by default. */
    browse?: number;
  };
  /**
   * Also return each event's click logit without its noise (`truth`): what an oracle knowing every hidden variable
   * would rank by, for benches that ask how much signal a feature could carry. Draws nothing.
   */
  truth?: boolean;
}

export type InteractionFeatureValues = Record<string, string | number | string[]>;

export interface InteractionEntity {
  id: string;
  features: InteractionFeatureValues;
}

export interface InteractionLabels {
  click: 0 | 1;
  /** 1 only if click is 1. */
  like: 0 | 1;
  /** Minutes; 0 without a click, else in (0, item_length_min]. */
  watch_time: number;
}

export interface InteractionEvent {
  eventId: string;
  userId: string;
  itemId: string;
  occurredAt: Date;
  labels: InteractionLabels;
}

export interface InteractionData {
  users: InteractionEntity[];
  items: InteractionEntity[];
  /** In non-decreasing order of occurredAt. */
  events: InteractionEvent[];
  /** With `truth`, per event: the click logit without the affinity noise, and the session interest's share of it. */
  truth?: { clickLogit: Float32Array; interestLogit: Float32Array };
}

/** The observable features, in the shape of a model spec's `features`. */
export const INTERACTION_FEATURES = [
  { name: 'user_country', type: 'categorical' },
  { name: 'user_age', type: 'numeric' },
  { name: 'user_device', type: 'categorical' },
  { name: 'user_activity', type: 'numeric' },
  { name: 'user_recent_items', type: 'sequence' },
  { name: 'item_id', type: 'categorical' },
  { name: 'item_genre', type: 'categorical' },
  { name: 'item_length_min', type: 'numeric' },
  { name: 'item_price', type: 'numeric' },
  { name: 'item_age_days', type: 'numeric' },
  { name: 'item_popularity', type: 'numeric' },
] as const satisfies readonly { name: string; type: 'numeric' | 'categorical' | 'sequence' }[];

/** The genres whose click rate and share of impressions rise and fall over the days. */
export const INTERACTION_DRIFT = { rising: 'gaming', fading: 'news' } as const;

/** Share of users per country: a few large markets and a long tail. */
const COUNTRIES: readonly (readonly [string, number])[] = [
  ['US', 0.3],
  ['IN', 0.18],
  ['BR', 0.12],
  ['GB', 0.08],
  ['DE', 0.07],
  ['JP', 0.06],
  ['FR', 0.05],
  ['MX', 0.05],
  ['CA', 0.04],
  ['KR', 0.03],
  ['ES', 0.02],
];

const DEVICES: readonly (readonly [string, number])[] = [
  ['mobile', 0.55],
  ['desktop', 0.25],
  ['tv', 0.15],
  ['tablet', 0.05],
];

/** Genre, share of the catalogue and typical length in minutes. */
const GENRES: readonly (readonly [string, number, number])[] = [
  ['drama', 0.12, 45],
  ['comedy', 0.1, 25],
  ['action', 0.08, 100],
  ['thriller', 0.06, 95],
  ['documentary', 0.06, 55],
  ['animation', 0.05, 22],
  ['horror', 0.04, 90],
  ['romance', 0.05, 100],
  ['sci_fi', 0.04, 105],
  ['fantasy', 0.03, 110],
  ['crime', 0.05, 45],
  ['music', 0.06, 4],
  ['sports', 0.04, 30],
  ['news', 0.05, 8],
  ['kids', 0.04, 12],
  ['reality', 0.03, 42],
  ['history', 0.02, 50],
  ['travel', 0.02, 25],
  ['cooking', 0.03, 15],
  ['gaming', 0.03, 20],
];

const PRICES = [0.99, 1.99, 2.99, 4.99, 9.99];
const DAY_MS = 86_400_000;

/** Logit shift (click) and log impression share at the end of the span, relative to its start. */
const DRIFT: Readonly<Partial<Record<string, { click: number; share: number }>>> = {
  [INTERACTION_DRIFT.rising]: { click: 1.2, share: 1.0 },
  [INTERACTION_DRIFT.fading]: { click: -1.0, share: -0.7 },
};

/** Sets the overall click rate (≈ 10 %); calibrated by measurement, as the other terms shift the mean logit. */
const CLICK_BIAS = -2.95;

interface World {
  dim: number;
  countryTaste: Float64Array[];
  ageTaste: Float64Array;
  deviceTaste: Float64Array[];
  genreTaste: Float64Array[];
  /** Like preference per genre, beyond what affinity explains. */
  genreLike: Float64Array;
}

interface User {
  country: number;
  age: number;
  device: number;
  activity: number;
  taste: Float64Array;
}

interface Item {
  genre: number;
  length: number;
  price: number;
  ageDays: number;
  popularity: number;
  quality: number;
  taste: Float64Array;
}

export function generateInteractions(options: InteractionOptions): InteractionData {
  const { users: userCount, items: itemCount, impressions, seed, start, days, latentDim = 8 } = options;
  if (!Number.isInteger(userCount) || userCount < 1)
    throw new RangeError(`users must be an integer ≥ 1, got ${userCount}`);
  if (!Number.isInteger(itemCount) || itemCount < 1)
    throw new RangeError(`items must be an integer ≥ 1, got ${itemCount}`);
  if (!Number.isInteger(impressions) || impressions < 0)
    throw new RangeError(`impressions must be an integer ≥ 0, got ${impressions}`);
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (Number.isNaN(start.getTime())) throw new RangeError('start must be a valid date');
  if (!(days > 0 && Number.isFinite(days))) throw new RangeError(`days must be > 0, got ${days}`);
  if (!Number.isInteger(latentDim) || latentDim < 1)
    throw new RangeError(`latentDim must be an integer ≥ 1, got ${latentDim}`);
  const { newItems = 0, sessionInterest } = options;
  if (!(newItems >= 0 && newItems < 1)) throw new RangeError(`newItems must be in [0, 1), got ${newItems}`);
  if (
    sessionInterest &&
    !(
      sessionInterest.hours > 0 &&
      Number.isFinite(sessionInterest.strength) &&
      (sessionInterest.browse ?? 0) >= 0 &&
      (sessionInterest.browse ?? 0) < 1
    )
  )
    throw new RangeError('sessionInterest needs hours > 0, a finite strength and browse in [0, 1)');

  const root = new Rng(seed);
  const world = createWorld(new Rng(root.seed()), latentDim);
  const users = sampleUsers(world, userCount, new Rng(root.seed()));
  const items = sampleItems(world, itemCount, new Rng(root.seed()));
  const { events, truth } = sampleEvents(world, users, items, options, new Rng(root.seed()));
  const histories = sampleHistories(world, users, items, new Rng(root.seed()));
  return {
    users: users.map((u, i) => ({ id: userId(i), features: { ...userFeatures(u), user_recent_items: histories[i] } })),
    items: items.map((it, i) => ({ id: itemId(i), features: itemFeatures(it, i) })),
    events,
    ...(truth && { truth }),
  };
}

/** One flat training record per event: the user's and the item's features and the three labels. */
export function* interactionsToRecords(data: InteractionData): Generator<InteractionFeatureValues> {
  const users = new Map(data.users.map((u) => [u.id, u.features]));
  const items = new Map(data.items.map((it) => [it.id, it.features]));
  for (const event of data.events) {
    const user = users.get(event.userId);
    const item = items.get(event.itemId);
    if (!user) throw new Error(`event ${event.eventId}: unknown user ${event.userId}`);
    if (!item) throw new Error(`event ${event.eventId}: unknown item ${event.itemId}`);
    yield { ...user, ...item, ...event.labels };
  }
}

function createWorld(rng: Rng, dim: number): World {
  return {
    dim,
    countryTaste: COUNTRIES.map(() => gaussianVector(rng, dim)),
    ageTaste: gaussianVector(rng, dim),
    deviceTaste: DEVICES.map(() => gaussianVector(rng, dim)),
    genreTaste: GENRES.map(() => gaussianVector(rng, dim)),
    genreLike: Float64Array.from(GENRES, () => 0.8 * rng.gaussian()),
  };
}

function sampleUsers(world: World, n: number, rng: Rng): User[] {
  const countries = cumulative(COUNTRIES.map(([, share]) => share));
  const devices = cumulative(DEVICES.map(([, share]) => share));
  const users: User[] = [];
  for (let i = 0; i < n; i++) {
    const country = pick(countries, rng.next());
    const device = pick(devices, rng.next());
    const age = Math.round(clamp(35 + 13 * rng.gaussian(), 13, 85));
    // Sessions per week: most users are light, a few heavy ones produce much of the traffic.
    const activity = Math.max(0.1, round1(Math.exp(1.2 + 0.8 * rng.gaussian())));
    const ageZ = (age - 35) / 13;
    const taste = new Float64Array(world.dim);
    for (let j = 0; j < world.dim; j++) {
      taste[j] =
        0.7 * world.countryTaste[country][j] +
        0.5 * ageZ * world.ageTaste[j] +
        0.3 * world.deviceTaste[device][j] +
        0.5 * rng.gaussian();
    }
    users.push({ country, age, device, activity, taste });
  }
  return users;
}

function sampleItems(world: World, n: number, rng: Rng): Item[] {
  const genres = cumulative(GENRES.map(([, share]) => share));
  const items: Item[] = [];
  for (let i = 0; i < n; i++) {
    const genre = pick(genres, rng.next());
    const length = round1(Math.max(1, GENRES[genre][2] * Math.exp(0.35 * rng.gaussian())));
    const price = rng.next() < 0.6 ? 0 : PRICES[rng.int(PRICES.length)];
    const ageDays = Math.floor(-200 * Math.log(1 - rng.next()));
    const quality = rng.gaussian();
    // Prior views: better items were watched more, but luck and age matter as much.
    const popularity = Math.round(Math.exp(5 + quality + 0.6 * rng.gaussian() + 0.2 * Math.log1p(ageDays))) + 1;
    const taste = new Float64Array(world.dim);
    for (let j = 0; j < world.dim; j++) taste[j] = 0.9 * world.genreTaste[genre][j] + 0.45 * rng.gaussian();
    items.push({ genre, length, price, ageDays, popularity, quality, taste });
  }
  return items;
}

function sampleEvents(
  world: World,
  users: User[],
  items: Item[],
  options: InteractionOptions,
  rng: Rng,
): Pick<InteractionData, 'events' | 'truth'> {
  const { impressions, seed, start, days } = options;
  const span = days * DAY_MS;
  const userPick = cumulative(users.map((u) => u.activity));

  // Items are picked in two steps, genre then item within it, so that the genre shares can drift over time.
  const byGenre = GENRES.map(() => [] as number[]);
  items.forEach((it, i) => byGenre[it.genre].push(i));
  const genreWeight = byGenre.map((list) => list.reduce((s, i) => s + items[i].popularity, 0));
  const itemPick = byGenre.map((list) => cumulative(list.map((i) => items[i].popularity)));
  const genreDrift = GENRES.map(([name]) => DRIFT[name]);

  const offsets = sampleOffsets(rng, impressions, days);
  const share = new Float64Array(GENRES.length);
  // Streams of their own, so that without these options every other draw stays as it was.
  const released = releaseTimes(items.length, options.newItems ?? 0, span, new Rng(seed ^ 0x0e1ea5e));
  const interest =
    options.sessionInterest && new SessionInterest(users.length, options.sessionInterest, new Rng(seed ^ 0x5e55));
  const events: InteractionEvent[] = [];
  const truth = options.truth
    ? { clickLogit: new Float32Array(impressions), interestLogit: new Float32Array(impressions) }
    : undefined;
  for (let n = 0; n < impressions; n++) {
    const t = offsets[n] / span;
    for (let g = 0; g < GENRES.length; g++) share[g] = genreWeight[g] * Math.exp((genreDrift[g]?.share ?? 0) * t);
    const genres = cumulative(share);
    // A browsing user (sessionInterest.browse) is drawn first: part of what they are shown is their genre of the moment.
    const browsing = interest && interest.browse > 0 ? pick(userPick, rng.next()) : undefined;
    const focus = browsing === undefined ? -1 : interest!.genreAt(browsing, offsets[n]);
    let itemIndex: number;
    do {
      const genre =
        focus >= 0 && byGenre[focus].length > 0 && rng.next() < interest!.browse ? focus : pick(genres, rng.next());
      itemIndex = byGenre[genre][pick(itemPick[genre], rng.next())];
    } while (released && released[itemIndex] > offsets[n]);
    const userIndex = browsing ?? pick(userPick, rng.next());
    const boost = interest?.boost(userIndex, items[itemIndex].genre, offsets[n]) ?? 0;
    const [user, item] = [users[userIndex], items[itemIndex]];
    events.push({
      eventId: `e-${seed}-${n}`,
      userId: userId(userIndex),
      itemId: itemId(itemIndex),
      occurredAt: new Date(start.getTime() + offsets[n]),
      labels: sampleLabels(world, user, item, t, rng, boost),
    });
    if (truth) {
      const affinity = tasteAffinity(world, user, item);
      const logit = clickLogit(user, item, t, affinity + boost);
      truth.clickLogit[n] = logit;
      truth.interestLogit[n] = logit - clickLogit(user, item, t, affinity);
    }
  }
  return { events, truth };
}

/** Per item, the offset from which it may be shown: 0 for the first ids, a uniform time for the last `share`. */
function releaseTimes(count: number, share: number, span: number, rng: Rng): Float64Array | undefined {
  if (share === 0) return undefined;
  const old = Math.max(1, Math.floor(count * (1 - share)));
  return Float64Array.from({ length: count }, (_, i) => (i < old ? 0 : Math.floor(rng.next() * span)));
}

/**
 * Each user's genre of the moment, any genre alike (so that nothing but the user's recent clicks tells it), renewed
 * after exponential durations.
 */
class SessionInterest {
  private readonly genre: Int32Array;
  private readonly until: Float64Array;

  constructor(
    users: number,
    private readonly options: { hours: number; strength: number; browse?: number },
    private readonly rng: Rng,
  ) {
    this.genre = new Int32Array(users).fill(-1);
    this.until = new Float64Array(users);
  }

  get browse(): number {
    return this.options.browse ?? 0;
  }

  /** User `user`'s genre of the moment at `offset` (ms), drawn anew when the last one has run out. */
  genreAt(user: number, offset: number): number {
    if (this.genre[user] < 0 || offset >= this.until[user]) {
      this.genre[user] = this.rng.int(GENRES.length);
      this.until[user] = offset - Math.log(1 - this.rng.next()) * this.options.hours * 3_600_000;
    }
    return this.genre[user];
  }

  /** The affinity added to `genre`'s items for user `user` at `offset` (ms). */
  boost(user: number, genre: number, offset: number): number {
    return this.genreAt(user, offset) === genre ? this.options.strength : 0;
  }
}

/** 5 to 20 items per user (more for active users), each a popular item the user liked enough to watch. */
function sampleHistories(world: World, users: User[], items: Item[], rng: Rng): string[][] {
  const itemPick = cumulative(items.map((it) => it.popularity));
  return users.map((user) => {
    const length = Math.min(20, 5 + Math.round(user.activity * 2 * rng.next()));
    const history: string[] = [];
    for (let attempt = 0; history.length < length && attempt < 10 * length; attempt++) {
      const i = pick(itemPick, rng.next());
      const affinity = dot(user.taste, items[i].taste) / Math.sqrt(world.dim) + 0.5 * items[i].quality;
      if (rng.next() < sigmoid(3 * affinity - 2)) history.push(itemId(i));
    }
    return history;
  });
}

/** The user's taste for the item, before noise and the interest of the moment. */
function tasteAffinity(world: World, user: User, item: Item): number {
  return dot(user.taste, item.taste) / Math.sqrt(world.dim) + 0.5 * item.quality;
}

/** Long items suit the TV and put off phone users. */
function lengthFit(user: User, item: Item): number {
  const device = DEVICES[user.device][0];
  return (device === 'tv' ? 0.4 : device === 'mobile' ? -0.4 : 0) * Math.log(item.length / 20);
}

function clickLogit(user: User, item: Item, t: number, affinity: number): number {
  return (
    CLICK_BIAS +
    1.2 * affinity -
    0.12 * item.price -
    0.3 * Math.log1p(item.ageDays / 30) +
    0.3 * Math.log(user.activity / 3.3) +
    lengthFit(user, item) +
    (DRIFT[GENRES[item.genre][0]]?.click ?? 0) * t
  );
}

/** `boost`: the user's interest of the moment in the item's genre (sessionInterest), added to the affinity. */
function sampleLabels(world: World, user: User, item: Item, t: number, rng: Rng, boost: number): InteractionLabels {
  const affinity = tasteAffinity(world, user, item) + 0.4 * rng.gaussian() + boost;
  if (rng.next() >= sigmoid(clickLogit(user, item, t, affinity))) return { click: 0, like: 0, watch_time: 0 };

  const likeLogit = -2.6 + 1.2 * affinity + world.genreLike[item.genre];
  const like = rng.next() < sigmoid(likeLogit) ? 1 : 0;
  const watchedShare = sigmoid(-0.3 + 0.9 * affinity + lengthFit(user, item) + 0.5 * rng.gaussian());
  // Rounded to 0.1 min but kept positive, since a click starts playback.
  const watch = Math.min(item.length, Math.max(0.1, round1(item.length * watchedShare)));
  return { click: 1, like, watch_time: watch };
}

/**
 * n sorted millisecond offsets in [0, days): uniform over days, with a daily cycle (fewest events around 09:00 UTC,
 * most around 21:00) drawn by rejection.
 */
function sampleOffsets(rng: Rng, n: number, days: number): Float64Array {
  const span = days * DAY_MS;
  const offsets = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let offset: number;
    do {
      offset = Math.floor(rng.next() * span);
    } while (
      rng.next() * 1.6 >
      1 - 0.6 * Math.cos((2 * Math.PI * (offset % DAY_MS)) / DAY_MS - (2 * Math.PI * 9) / 24)
    );
    offsets[i] = offset;
  }
  return offsets.sort();
}

function userFeatures(u: User): InteractionFeatureValues {
  return {
    user_country: COUNTRIES[u.country][0],
    user_age: u.age,
    user_device: DEVICES[u.device][0],
    user_activity: u.activity,
  };
}

function itemFeatures(it: Item, index: number): InteractionFeatureValues {
  return {
    item_id: itemId(index),
    item_genre: GENRES[it.genre][0],
    item_length_min: it.length,
    item_price: it.price,
    item_age_days: it.ageDays,
    item_popularity: it.popularity,
  };
}

function userId(i: number): string {
  return `u-${i}`;
}

function itemId(i: number): string {
  return `i-${i}`;
}

function cumulative(weights: ArrayLike<number>): Float64Array {
  const c = new Float64Array(weights.length);
  let s = 0;
  for (let i = 0; i < weights.length; i++) c[i] = s += weights[i];
  return c;
}

/** Index drawn with probability proportional to its weight, given the cumulative weights and r uniform in [0, 1). */
function pick(cum: Float64Array, r: number): number {
  const x = r * cum[cum.length - 1];
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
