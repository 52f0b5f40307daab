import { initBackend } from '../backend/backend';
import { auc } from '../eval/metrics';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { createSelectionBiasWorld, sampleSelectionBias, selectionBiasFeatures } from '../synthetic/selection-bias.data';

beforeAll(() => initBackend('wasm'));

const specOf = (conversion: { conditionalOn: string } | { sampleSpace: string }) =>
  parseModelSpec({
    features: selectionBiasFeatures,
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'conversion', label: 'conversion', type: 'binary', ...conversion },
    ],
    model: { architecture: 'mmoe', experts: 3, expertUnits: [16], towerUnits: [8] },
    training: { epochs: 4, batchSize: 256, learningRate: 0.01, seed: 1, earlyStoppingPatience: 0 },
  });

describe('ESMM (conditionalOn) and sampleSpace on selection-biased impressions', () => {
  const world = createSelectionBiasWorld(1);

  it('learns the joint event over every impression, P(click) · P(conversion | click), and reports both AUCs', async () => {
    const esmm = specOf({ conditionalOn: 'click' });
    const baseline = specOf({ sampleSpace: 'click' });
    const train = sampleSelectionBias(esmm, world, 10_000, 1);
    const test = sampleSelectionBias(esmm, world, 10_000, 2);
    const clicked = test.table.labelColumns()[0].reduce((n, y) => n + y, 0);

    const { model, summary } = await MultiTaskModel.train(esmm, train.table);
    // Every epoch's history has the joint's AUC under the task and the conditional one under task|parent.
    expect(Object.keys(summary.history[0].tasks)).toEqual(['click', 'conversion', 'conversion|click']);
    const data = model.encode(test.table);
    const { scores, conditional } = model.predict(data);
    scores[1].forEach((joint, i) => expect(joint).toBeCloseTo(scores[0][i] * conditional![0][i], 6));
    const report = model.evaluate(data);
    // The joint's metrics are over every impression (an unclicked one is a known 0), the conditional's on the clicks.
    expect(report.tasks.conversion.count).toBe(10_000);
    expect(report.tasks.conversion.conditionalCount).toBe(clicked);
    expect(report.tasks.conversion.auc).toBeCloseTo(auc(scores[1], test.clickAndConversion), 10);
    const esmmCvr = auc(conditional![0], test.counterfactualConversion);
    const esmmCtcvr = report.tasks.conversion.auc;
    model.dispose();

    const trained = await MultiTaskModel.train(baseline, sampleSelectionBias(baseline, world, 10_000, 1).table);
    const base = trained.model;
    const baseData = base.encode(sampleSelectionBias(baseline, world, 10_000, 2).table);
    const baseScores = base.predict(baseData).scores;
    expect(base.predict(baseData).conditional).toBeUndefined();
    expect(base.evaluate(baseData).tasks.conversion.count).toBe(clicked); // trained and judged on the clicks only
    const baseCvr = auc(baseScores[1], test.counterfactualConversion);
    const baseCtcvrAlone = auc(baseScores[1], test.clickAndConversion);
    base.dispose();

    // The structure the baseline's conversion task lacks: its output is the conversion rate of a click, not the
    // click-and-convert event, so it ranks impressions for the joint event clearly worse.
    expect(esmmCtcvr - baseCtcvrAlone).toBeGreaterThan(0.05);
    // Over the entire space both learn the conversion propensity (counterfactual labels of every impression); which one
    // wins varies with the seed on this data (bench:esmm measures it), so only "learnt" is asserted here.
    expect(esmmCvr).toBeGreaterThan(0.7);
    expect(baseCvr).toBeGreaterThan(0.7);
  });
});
