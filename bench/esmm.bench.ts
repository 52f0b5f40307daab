/**
 * ESMM (a conversion task `conditionalOn` the click, learnt over every impression) against the classic baseline (the
 * conversion task trained on clicks only, `sampleSpace`), on impressions with selection bias built in: click and
 * conversion driven by partly different features, the conversion observed only after a click. Each model is judged
 * where the observed labels cannot judge it: its CVR over the entire space, against every impression's counterfactual
 * conversion, and its CTCVR (click ∧ conversion) over every impression.
 *
 *   npm run bench:esmm [-- --quick]
 */
import { cpus, loadavg } from 'node:os';

import {
  auc,
  createSelectionBiasWorld,
  initBackend,
  MultiTaskModel,
  parseModelSpec,
  sampleSelectionBias,
  selectionBiasFeatures,
} from '@app/mmoe';

import { cpuModel, formatCount, hasFlag, log, markdownTable, meanStd, stopwatch } from './bench.util';

interface Plan {
  seeds: number;
  train: number;
  test: number;
  epochs: number;
}
const FULL: Plan = { seeds: 5, train: 50_000, test: 50_000, epochs: 10 };
const QUICK: Plan = { seeds: 2, train: 8000, test: 8000, epochs: 3 };

const VARIANTS = {
  ESMM: { conditionalOn: 'click' },
  'sampleSpace: click': { sampleSpace: 'click' },
} as const;
type Variant = keyof typeof VARIANTS;
const METRICS = ['CVR AUC, entire space', 'CVR AUC, clicks', 'CTCVR AUC', 'CTR AUC'] as const;

const specOf = (variant: Variant, seed: number, epochs: number) =>
  parseModelSpec({
    features: selectionBiasFeatures,
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'conversion', label: 'conversion', type: 'binary', ...VARIANTS[variant] },
    ],
    model: { architecture: 'mmoe', experts: 3, expertUnits: [16], towerUnits: [8] },
    training: { epochs, batchSize: 256, learningRate: 0.005, seed, earlyStoppingPatience: 2 },
  });

/** The four AUCs of one trained variant on one seed's test impressions. */
async function run(variant: Variant, seed: number, plan: Plan): Promise<number[]> {
  const spec = specOf(variant, seed, plan.epochs);
  const world = createSelectionBiasWorld(seed);
  const train = sampleSelectionBias(spec, world, plan.train, 2 * seed);
  const test = sampleSelectionBias(spec, world, plan.test, 2 * seed + 1);
  const { model } = await MultiTaskModel.train(spec, train.table);
  try {
    const { scores, conditional } = model.predict(model.encode(test.table));
    const [ctr, conversion] = scores;
    // ESMM's conversion score is the joint and its CVR the conditional; the baseline's score is its CVR.
    const cvr = conditional ? conditional[0] : conversion;
    const ctcvr = conditional ? conversion : ctr.map((p, i) => p * conversion[i]);
    const clicks = Uint8Array.from(test.table.labelColumns()[0], (y) => (y === 1 ? 1 : 0));
    return [
      auc(cvr, test.counterfactualConversion),
      auc(cvr, test.counterfactualConversion, clicks),
      auc(ctcvr, test.clickAndConversion),
      auc(ctr, test.table.labelColumns()[0]),
    ];
  } finally {
    model.dispose();
  }
}

/** Mean ± standard error of the mean (sample std / √n). */
function meanSe(values: number[]): string {
  const { mean, std } = meanStd(values);
  return `${mean.toFixed(4)} ± ${(std / Math.sqrt(values.length)).toFixed(4)}`;
}

async function main(): Promise<void> {
  const quick = hasFlag('quick');
  const plan = quick ? QUICK : FULL;
  await initBackend('wasm');
  const loadBefore = loadavg()[0];
  const elapsed = stopwatch();
  const results = new Map<Variant, number[][]>(Object.keys(VARIANTS).map((v) => [v as Variant, []]));
  for (let seed = 1; seed <= plan.seeds; seed++) {
    for (const variant of results.keys()) {
      results.get(variant)!.push(await run(variant, seed, plan));
      log(
        `seed ${seed} ${variant}: ${results
          .get(variant)!
          .at(-1)!
          .map((a) => a.toFixed(4))} (${elapsed().toFixed(0)} s)`,
      );
    }
  }
  const column = (variant: Variant, m: number) => results.get(variant)!.map((r) => r[m]);
  const esmm = (m: number) => column('ESMM', m);
  const base = (m: number) => column('sampleSpace: click', m);

  console.log(quick ? '\nQUICK SMOKE RUN (2 seeds, few rows, 3 epochs; not representative)\n' : '');
  console.log(`CPU: ${cpuModel()} (${cpus().length} cores), tfjs wasm backend.`);
  console.log(
    `Selection-biased impressions (libs/mmoe/src/synthetic/selection-bias.data.ts): train / test = ` +
      `${formatCount(plan.train)} / ${formatCount(plan.test)} per seed, ${plan.seeds} seeds (each its own world of item ` +
      `appeal and quality). MMoE 3 experts × [16], towers [8], Adam lr 0.005, batch 256, ≤ ${plan.epochs} epochs, ` +
      `early stopping on the click AUC.`,
  );
  console.log('\nAUC, mean ± standard error over seeds\n');
  console.log(
    markdownTable(
      ['model', ...METRICS],
      [...results.keys()].map((v) => [v, ...METRICS.map((_, m) => meanSe(column(v, m)))]),
    ),
  );
  console.log('\nESMM − baseline, per seed then mean ± standard error (positive: ESMM better)\n');
  console.log(markdownTable([...METRICS], [METRICS.map((_, m) => meanSe(esmm(m).map((a, i) => a - base(m)[i])))]));
  console.log(
    `\nCVR over the entire space is judged against every impression's counterfactual conversion (drawn whether or not ` +
      `it was clicked); CVR on clicks against the same labels on the clicked test impressions. The baseline's CTCVR is ` +
      `P(click) · P(conversion | click) from its two tasks.`,
  );
  console.log(
    `wall time: ${elapsed().toFixed(0)} s; 1-minute load average before / after: ${loadBefore.toFixed(2)} / ` +
      `${loadavg()[0].toFixed(2)}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
