import { parseModelSpec } from '../model-spec/model-spec';
import { renderTrainingReport, type TrainingReportData } from './training-report';

const spec = parseModelSpec({
  features: [{ name: 'x', type: 'numeric' }],
  tasks: [
    { name: 'click', label: 'c', type: 'binary' },
    { name: 'watch', label: 'w', type: 'regression' },
  ],
  model: { experts: 2, expertUnits: [4] },
});

const curve = [
  { meanPrediction: 0.1, labelRate: 0.2, count: 5 },
  { meanPrediction: 0.6, labelRate: 0.5, count: 5 },
];

function data(extra: Partial<TrainingReportData> = {}): TrainingReportData {
  return {
    title: 'v7 & co',
    spec,
    parameters: 1234,
    backend: 'wasm',
    rows: { train: 900, validation: 100, holdout: 250 },
    training: {
      history: [1, 2, 3].map((epoch) => ({
        epoch,
        loss: 1 / epoch,
        validLoss: 1.1 / epoch,
        metric: 0.6 + epoch / 100,
        tasks: { click: 0.6 + epoch / 100, watch: 3 - epoch / 10 },
      })),
      bestEpoch: 3,
      epochsRun: 3,
      stoppedEarly: false,
      examplesPerSec: 5000,
      seconds: 2,
    },
    evaluatedOn: 'the held-out slice',
    tasks: { click: { auc: 0.7, ece: 0.05 }, watch: { rmse: 2.5 } },
    gates: {
      click: { experts: [0, 1], utilisation: [0.8, 0.2], entropy: 0.5, largestShare: 0.8 },
      watch: { experts: [0, 1], utilisation: [0.3, 0.7], entropy: 0.61, largestShare: 0.7 },
    },
    calibration: {
      click: {
        method: 'platt',
        before: { ece: 0.1, logloss: 0.5, curve },
        after: { ece: 0.05, logloss: 0.45, curve },
      },
    },
    ...extra,
  };
}

describe('training report', () => {
  it('is one page of inline SVG charts with escaped text and nothing to fetch', () => {
    const html = renderTrainingReport(data());
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script|<link|<img|\bsrc=|\bhref=|url\(/i);
    // Loss, two metric charts, the gate heatmap (softmax: no load chart), one reliability diagram.
    expect(html.match(/<svg class="chart"/g)).toHaveLength(5);
    expect(html).toContain('<title>v7 &#38; co</title>');
    expect(html).toContain('platt: ECE 0.1 → 0.05');
    expect(html).toContain('1,234');
  });

  it("compares with production's metrics on the same slice, marking better and worse", () => {
    const html = renderTrainingReport(
      data({ production: { versionId: 3, tasks: { click: { auc: 0.65, ece: 0.04 }, watch: { rmse: 2.6 } } } }),
    );
    expect(html).toContain('production v3');
    expect(html).toMatch(/<td class="num better">\+0\.05<\/td>/); // AUC up
    expect(html).toMatch(/<td class="num worse">\+0\.01<\/td>/); // ECE up
    expect(html).toMatch(/<td class="num better">-0\.1<\/td>/); // RMSE down
  });

  it('shows what the gate compared when production had trained on part of the slice, and what it decided', () => {
    const unseen = {
      trainedTo: '2026-12-01T10:00:00.000Z',
      rows: 120,
      candidate: { click: { auc: 0.61 } },
      production: { click: { auc: 0.66 } },
    };
    const tasks = { click: { auc: 0.7 } };
    const gate = { decision: 'candidate', reason: 'kept as candidate: click AUC <worse>' };
    const html = renderTrainingReport(data({ production: { versionId: 3, tasks, unseen }, gate }));
    expect(html).toContain('Metrics on the 120 held-out rows production has not trained on');
    expect(html).toContain('the events before 2026-12-01T10:00:00.000Z');
    expect(html).toMatch(/<td class="num worse">-0\.05<\/td>/); // 0.61 against 0.66 on the unseen rows
    expect(html).toContain('candidate: kept as candidate: click AUC &#60;worse&#62;');

    const none = renderTrainingReport(data({ production: { versionId: 3, tasks, unseen: { ...unseen, rows: 0 } } }));
    expect(none).toContain('Metrics on the 0 held-out rows production has not trained on');
    expect(none).toContain('on every held-out row. The gate compared nothing');
    expect(none).not.toContain('compared the two versions');
    expect(renderTrainingReport(data({ production: { versionId: 3, tasks } }))).not.toContain('has not trained on');
  });

  it('draws an expert-load heatmap for top-k gates and says when there are no gates', () => {
    const withLoad = data();
    withLoad.gates.click.load = [1, 1];
    expect(renderTrainingReport(withLoad)).toContain('expert load');
    expect(renderTrainingReport(data({ gates: {} }))).toContain('no gates');
  });

  it('charts the task weights per epoch under a learnt or gradient-level balancing, and PCGrad’s conflicts', () => {
    const balanced = (method: 'gradnorm' | 'pcgrad', conflicts?: number) => {
      const d = data({ spec: parseModelSpec({ ...spec, training: { ...spec.training, lossBalancing: { method } } }) });
      d.training.history.forEach((h, i) => {
        h.taskWeights = { click: 1 + i / 10, watch: 1 - i / 10 };
        if (conflicts !== undefined) h.gradientConflicts = conflicts;
      });
      return renderTrainingReport(d);
    };
    expect(renderTrainingReport(data())).not.toContain('Task weights per epoch');
    const gradnorm = balanced('gradnorm');
    expect(gradnorm).toContain('Task weights per epoch (gradnorm)');
    expect(gradnorm.match(/<svg class="chart"/g)).toHaveLength(6);
    expect(balanced('pcgrad', 0.4)).toContain('share of task pairs with conflicting gradients');
  });
});
