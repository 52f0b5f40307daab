/**
 * Live traffic of a canary split whose truth is known, to test the rollout policy's statistics: users with their own
 * base rate and taste (the random effects that make one user's impressions correlated), items with a popularity and
 * a feature, and two models of set quality. A model sees the true logit through noise: a per-user error (it misjudges
 * some users) and a per-impression one; more noise, lower AUC. Users are split as the API splits them, by
 * FNV-1a(userId) mod 100, and come back at their own rate (a few heavy users carry much of the traffic).
 */

import { auc } from '../eval/metrics';
import { fnv1a32 } from '../util/hash';
import { Rng } from '../util/random';

export interface CanaryTrafficOptions {
  users: number;
  /** Share of users on the canary, in percent. */
  canaryPercent: number;
  /** SD, on the logit scale, of the users' base rates and of their taste (the weight they give the item's feature). */
  userSd: number;
  tasteSd: number;
  itemsPerRequest: number;
  seed: number;
}

/** A model: how much noise it sees the true logit through. */
export interface SimulatedModel {
  /** SD of its error per user, and per impression. */
  userError: number;
  noise: number;
}

const ITEMS = 1000;
const INTERCEPT = -1.5;

interface Population {
  base: Float64Array;
  taste: Float64Array;
  /** Cumulative activity: a request's user is drawn in proportion to it. */
  activity: Float64Array;
}

function population(users: number, userSd: number, tasteSd: number, rng: Rng): Population {
  const base = Float64Array.from({ length: users }, () => userSd * rng.gaussian());
  const taste = Float64Array.from({ length: users }, () => 1 + tasteSd * rng.gaussian());
  const activity = new Float64Array(users);
  for (let u = 0, sum = 0; u < users; u++) activity[u] = sum += Math.exp(rng.gaussian());
  return { base, taste, activity };
}

/** Item popularity and feature, the same in every world of one seed. */
function items(rng: Rng): { popularity: Float64Array; feature: Float64Array } {
  return {
    popularity: Float64Array.from({ length: ITEMS }, () => 0.5 * rng.gaussian()),
    feature: Float64Array.from({ length: ITEMS }, () => rng.gaussian()),
  };
}

/** Requests of a canary split: each is one user's impressions, labelled from the truth, scored by their arm's model. */
export class CanaryTraffic {
  readonly userIds: string[];
  /** Whether each user is on the canary. */
  readonly onCanary: Uint8Array;
  private readonly people: Population;
  private readonly catalogue: ReturnType<typeof items>;
  private readonly modelError: { production: Float64Array; canary: Float64Array };
  private readonly rng: Rng;
  readonly scores: Float64Array;
  readonly labels: Uint8Array;

  constructor(
    readonly options: CanaryTrafficOptions,
    readonly models: { production: SimulatedModel; canary: SimulatedModel },
  ) {
    const rng = new Rng(options.seed);
    this.catalogue = items(new Rng(1));
    this.people = population(options.users, options.userSd, options.tasteSd, rng);
    this.userIds = Array.from({ length: options.users }, (_, u) => `sim-${options.seed}-${u}`);
    this.onCanary = Uint8Array.from(this.userIds, (id) => (fnv1a32(id, 'utf8') % 100 < options.canaryPercent ? 1 : 0));
    const errors = (model: SimulatedModel) =>
      Float64Array.from({ length: options.users }, () => model.userError * rng.gaussian());
    this.modelError = { production: errors(models.production), canary: errors(models.canary) };
    this.rng = new Rng(rng.seed());
    this.scores = new Float64Array(options.itemsPerRequest);
    this.labels = new Uint8Array(options.itemsPerRequest);
  }

  /** Draws the next request into `scores` and `labels` and returns its user. */
  next(): number {
    const { rng, people, catalogue } = this;
    const total = people.activity[people.activity.length - 1];
    const user = upperBoundOf(people.activity, rng.next() * total);
    const canary = this.onCanary[user] === 1;
    const model = canary ? this.models.canary : this.models.production;
    const error = (canary ? this.modelError.canary : this.modelError.production)[user];
    for (let j = 0; j < this.scores.length; j++) {
      const item = rng.int(ITEMS);
      const logit =
        INTERCEPT + people.base[user] + catalogue.popularity[item] + people.taste[user] * catalogue.feature[item];
      this.labels[j] = rng.next() < sigmoid(logit) ? 1 : 0;
      this.scores[j] = sigmoid(logit + error + model.noise * rng.gaussian());
    }
    return user;
  }
}

/**
 * The AUC a model reaches over the whole population (a large fresh sample of users and impressions, the same draws
 * for every model of one seed, so that two models compare without sampling noise between them).
 */
export function populationAuc(
  model: SimulatedModel,
  world: Pick<CanaryTrafficOptions, 'userSd' | 'tasteSd'>,
  impressions = 400_000,
  seed = 7,
): number {
  const rng = new Rng(seed);
  const catalogue = items(new Rng(1));
  const users = 20_000;
  const people = population(users, world.userSd, world.tasteSd, rng);
  const userError = Float64Array.from({ length: users }, () => rng.gaussian());
  const scores = new Float64Array(impressions);
  const labels = new Float64Array(impressions);
  for (let i = 0; i < impressions; i++) {
    const user = rng.int(users);
    const item = rng.int(ITEMS);
    const logit =
      INTERCEPT + people.base[user] + catalogue.popularity[item] + people.taste[user] * catalogue.feature[item];
    labels[i] = rng.next() < sigmoid(logit) ? 1 : 0;
    scores[i] = logit + model.userError * userError[user] + model.noise * rng.gaussian();
  }
  return auc(scores, labels);
}

/** The per-impression noise at which a model (with `userError`) is `shift` AUC points from `reference`. */
export function modelWithAucShift(
  reference: SimulatedModel,
  shift: number,
  world: Pick<CanaryTrafficOptions, 'userSd' | 'tasteSd'>,
): SimulatedModel {
  const target = populationAuc(reference, world) + shift;
  // AUC falls as the noise grows: bisect on it.
  let lo = 0;
  let hi = 8;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (populationAuc({ ...reference, noise: mid }, world) > target) lo = mid;
    else hi = mid;
  }
  return { ...reference, noise: (lo + hi) / 2 };
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** The first index whose cumulative value exceeds x. */
function upperBoundOf(cumulative: Float64Array, x: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
