import { RawTable } from '../data/raw-table';
import { ModelSpec, ModelSpecInput } from '../model-spec/model-spec.schema';
import { Rng } from '../util/random';

/**
 * Impressions with the selection bias of post-click conversion (ESMM, Ma et al. SIGIR 2018): a click and a
 * conversion driven by partly different features (item appeal and `ad_fit` for the click; item quality, `price_fit`
 * and the opposite of `ad_fit` for the conversion), and the conversion observed only after a click. Every impression
 * also carries its counterfactual conversion (drawn whether or not it was clicked) and its true propensity, so that a
 * CVR model can be judged over the entire space, which no observed label allows.
 *
 * A third step extends the funnel for AITM: a repurchase after a conversion, driven by item quality, the user's
 * `tenure` and the opposite of `price_fit`. Its draws come from a generator of their own, so that the first two
 * steps are the same with or without it. The label columns hold each step's event over every impression (click,
 * click ∧ conversion, click ∧ conversion ∧ repurchase): 0 where an earlier step did not happen.
 */
export interface SelectionBiasWorld {
  /** Per item: its click appeal and its conversion quality, correlated `itemCorrelation`. */
  appeal: Float64Array;
  quality: Float64Array;
}

export interface SelectionBiasSample {
  table: RawTable;
  /** Per impression: P(conversion | click) and the conversion drawn from it (0/1), clicked or not. */
  cvrPropensity: Float32Array;
  counterfactualConversion: Float32Array;
  /** Per impression: click ∧ conversion (0/1), the CTCVR label. */
  clickAndConversion: Float32Array;
  /** Per impression: click ∧ conversion ∧ repurchase (0/1), the funnel's third step. */
  clickConversionRepurchase: Float32Array;
}

export const SELECTION_BIAS_ITEMS = 400;

/** The features and the two labels' columns of the generated impressions (tasks and model are the caller's). */
export const selectionBiasFeatures: ModelSpecInput['features'] = [
  { name: 'item', type: 'categorical', embeddingDim: 4 },
  { name: 'ad_fit', type: 'numeric' },
  { name: 'price_fit', type: 'numeric' },
];

/** The features of the three-step funnel (the repurchase reads `tenure` too). */
export const funnelFeatures: ModelSpecInput['features'] = [
  ...selectionBiasFeatures,
  { name: 'tenure', type: 'numeric' },
];

export function createSelectionBiasWorld(seed: number, itemCorrelation = 0.6): SelectionBiasWorld {
  const rng = new Rng(seed);
  const appeal = new Float64Array(SELECTION_BIAS_ITEMS);
  const quality = new Float64Array(SELECTION_BIAS_ITEMS);
  for (let i = 0; i < SELECTION_BIAS_ITEMS; i++) {
    appeal[i] = rng.gaussian();
    quality[i] = itemCorrelation * appeal[i] + Math.sqrt(1 - itemCorrelation ** 2) * rng.gaussian();
  }
  return { appeal, quality };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** `n` impressions; the labels go to the columns `click`, `conversion` and `repurchase`. */
export function sampleSelectionBias(
  spec: ModelSpec,
  world: SelectionBiasWorld,
  n: number,
  seed: number,
): SelectionBiasSample {
  const rng = new Rng(seed);
  const thirdStep = new Rng(seed ^ 0x3e9);
  const table = new RawTable(spec);
  const cvrPropensity = new Float32Array(n);
  const counterfactualConversion = new Float32Array(n);
  const clickAndConversion = new Float32Array(n);
  const clickConversionRepurchase = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    // Popular items are shown more often (a skew, so that rare items are sparse).
    const item = Math.min(SELECTION_BIAS_ITEMS - 1, Math.floor(SELECTION_BIAS_ITEMS * rng.next() ** 2));
    const adFit = rng.gaussian();
    const priceFit = rng.gaussian();
    const click = rng.next() < sigmoid(-2.2 + 1.2 * world.appeal[item] + 1.0 * adFit);
    const cvr = sigmoid(-1 + 1.2 * world.quality[item] + 1.0 * priceFit - 0.8 * adFit);
    const converts = rng.next() < cvr;
    cvrPropensity[r] = cvr;
    counterfactualConversion[r] = converts ? 1 : 0;
    clickAndConversion[r] = click && converts ? 1 : 0;
    const tenure = thirdStep.gaussian();
    const repurchases = thirdStep.next() < sigmoid(-0.5 + 1.0 * world.quality[item] + 1.2 * tenure - 0.6 * priceFit);
    clickConversionRepurchase[r] = click && converts && repurchases ? 1 : 0;
    table.add({
      item: `i${item}`,
      ad_fit: String(adFit),
      price_fit: String(priceFit),
      tenure: String(tenure),
      click: click ? '1' : '0',
      conversion: String(clickAndConversion[r]),
      repurchase: String(clickConversionRepurchase[r]),
    });
  }
  return { table, cvrPropensity, counterfactualConversion, clickAndConversion, clickConversionRepurchase };
}
