import type { VocabularyOverflow } from '../data/preprocessor';
import type { GateReport, TaskCalibrationReport } from '../eval/evaluator';
import { lossBalancingOf, type ModelSpec } from '../model-spec/model-spec.schema';
import { taskType } from '../tasks/task-types';
import type { TrainSummary } from '../train/trainer';

/**
 * The training report: one self-contained HTML file (inline CSS, inline SVG, no script, no fetch) that a person
 * deciding on a version can open anywhere, from a laptop's file system to an air-gapped admin console.
 *
 * Charts are SVG strings made here rather than a bundled charting library: four chart kinds (lines, heatmap,
 * reliability diagram, table) take ~200 lines, where the smallest capable libraries add 40–250 kB of JavaScript to
 * every report, need a script to run (and a CSP to allow it), and render nothing when printed or previewed without JS.
 */
export interface TrainingReportData {
  title: string;
  spec: ModelSpec;
  parameters: number;
  /** The tfjs backend that trained it. */
  backend: string;
  rows: { train: number; validation?: number; holdout?: number };
  training: Pick<TrainSummary, 'history' | 'bestEpoch' | 'epochsRun' | 'stoppedEarly' | 'examplesPerSec' | 'seconds'>;
  /** Where gates and calibration were measured ("validation", "holdout"). */
  evaluatedOn: string;
  tasks: TaskMetrics;
  gates: Record<string, GateReport>;
  calibration: Record<string, TaskCalibrationReport>;
  /** The learnt vocabularies that reached maxVocab, and the ids each left out of vocabulary. */
  vocabularyOverflow?: VocabularyOverflow[];
  /** Worker versions: production's metrics on the same held-out slice. */
  production?: {
    versionId: number;
    tasks: TaskMetrics;
    /** When production had trained on the slice's earlier rows: both on the rows from its `trainedTo`, as the gate judged. */
    unseen?: { trainedTo: string; rows: number; candidate: TaskMetrics; production: TaskMetrics };
  };
  /** Worker versions: what the training job's gate decided, and why. */
  gate?: { decision: string; reason: string };
  createdAt?: string;
}

type TaskMetrics = Record<string, Record<string, number>>;

/**
 * What the report needs from a browser, served with it as its Content-Security-Policy: inline CSS and inline SVG,
 * nothing else (no script, no fetch, no form, no frame, no base). A report carrying injected markup cannot run or load
 * anything.
 */
export const REPORT_CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f', '#be185d'];

export function renderTrainingReport(data: TrainingReportData): string {
  const { spec, training } = data;
  const epochs = training.history.map((h) => h.epoch);
  const hasValidLoss = training.history.some((h) => Number.isFinite(h.validLoss));
  const sections = [
    section(
      'Summary',
      facts([
        ['Architecture', `${spec.model.architecture}, ${spec.model.experts} experts, gate ${spec.model.gate.type}`],
        ['Parameters', data.parameters.toLocaleString('en-US')],
        ['Rows', rowsText(data.rows)],
        [
          'Epochs',
          `${training.epochsRun} run, best ${training.bestEpoch}${training.stoppedEarly ? ' (stopped early)' : ''}`,
        ],
        ['Throughput', `${Math.round(training.examplesPerSec).toLocaleString('en-US')} examples/s (training steps)`],
        ['Wall time', `${training.seconds.toFixed(1)} s`],
        ['Backend', data.backend],
        ...(data.vocabularyOverflow?.length
          ? [['Vocabulary overflow', overflowText(data.vocabularyOverflow)] as [string, string]]
          : []),
        ...(data.gate ? [['Gate', `${data.gate.decision}: ${data.gate.reason}`] as [string, string]] : []),
        ...(data.createdAt ? [['Created', data.createdAt] as [string, string]] : []),
      ]),
    ),
    section(
      'Loss per epoch',
      lineChart({
        title: hasValidLoss ? 'training and validation loss' : 'training loss',
        x: epochs,
        series: [
          { name: 'train', values: training.history.map((h) => h.loss) },
          ...(hasValidLoss ? [{ name: 'validation', values: training.history.map((h) => h.validLoss) }] : []),
        ],
        xLabel: 'epoch',
        marker: training.bestEpoch,
      }),
    ),
    ...balancingSections(data),
    section(
      'Validation metric per epoch',
      `<div class="grid">${spec.tasks
        .map((task, t) =>
          lineChart({
            title: `${task.name} — ${taskType(task).metric.toUpperCase()}`,
            x: epochs,
            series: [{ name: task.name, values: training.history.map((h) => h.tasks?.[task.name] ?? NaN) }],
            xLabel: 'epoch',
            marker: training.bestEpoch,
            color: PALETTE[t % PALETTE.length],
          }),
        )
        .join('')}</div>`,
    ),
    section(
      `Metrics on ${data.evaluatedOn}`,
      metricsTable(spec, data.tasks, data.production) +
        (data.production
          ? `<p class="note">Both versions scored on the same held-out slice (later in time than all of this version's own training rows).</p>`
          : ''),
    ),
    ...unseenSection(data),
    section(`Gate utilisation on ${data.evaluatedOn}`, gateSection(data)),
    section(`Calibration on ${data.evaluatedOn}`, calibrationSection(data)),
    section('Spec', `<pre>${escape(JSON.stringify(spec, null, 2))}</pre>`),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${escape(data.title)}</h1><p>${escape(spec.tasks.map((t) => `${t.name} (${t.type})`).join(' · '))}</p></header>
<main>${sections.join('\n')}</main>
</body>
</html>
`;
}

/** With a learnt or gradient-level training.lossBalancing: each task loss's weight per epoch, and PCGrad's conflicts. */
function balancingSections({ spec, training }: TrainingReportData): string[] {
  const balancing = lossBalancingOf(spec);
  const history = training.history.filter((h) => h.taskWeights !== undefined);
  if (balancing.method === 'fixed' || history.length === 0) return [];
  const x = history.map((h) => h.epoch);
  const conflicts = history.map((h) => h.gradientConflicts ?? NaN);
  return [
    section(
      `Task weights per epoch (${balancing.method})`,
      '<div class="grid">' +
        lineChart({
          title: 'weight of each task loss at the end of the epoch',
          x,
          series: spec.tasks.map((task) => ({
            name: task.name,
            values: history.map((h) => h.taskWeights![task.name]),
          })),
          xLabel: 'epoch',
          marker: training.bestEpoch,
        }) +
        (conflicts.some(Number.isFinite)
          ? lineChart({
              title: 'share of task pairs with conflicting gradients',
              x,
              series: [{ name: 'conflicts', values: conflicts }],
              xLabel: 'epoch',
              marker: training.bestEpoch,
            })
          : '') +
        '</div>',
    ),
  ];
}

const STYLE = `
:root { color-scheme: light; --ink: #111827; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f9fafb; }
header { padding: 20px 32px; background: #111827; color: #f9fafb; }
header h1 { margin: 0 0 4px; font-size: 20px; font-weight: 600; }
header p { margin: 0; color: #d1d5db; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
h2 { margin: 0 0 12px; font-size: 15px; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px; }
table { border-collapse: collapse; }
th, td { padding: 4px 12px 4px 0; text-align: left; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
th { color: var(--muted); font-weight: 500; }
td.num { text-align: right; }
.better { color: #15803d; } .worse { color: #b91c1c; }
pre { margin: 0; max-height: 360px; overflow: auto; background: #f3f4f6; padding: 12px; border-radius: 6px; font-size: 12px; }
svg { display: block; }
svg text { font: 11px system-ui, sans-serif; fill: #374151; }
svg .title { font-size: 12px; font-weight: 600; fill: var(--ink); }
.note { color: var(--muted); margin: 8px 0 0; }
`;

function section(title: string, body: string): string {
  return `<section><h2>${escape(title)}</h2>${body}</section>`;
}

function facts(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(v)}</td></tr>`).join('')}</table>`;
}

function rowsText(rows: TrainingReportData['rows']): string {
  const parts = [`${rows.train.toLocaleString('en-US')} training`];
  if (rows.validation !== undefined) parts.push(`${rows.validation.toLocaleString('en-US')} validation`);
  if (rows.holdout !== undefined) parts.push(`${rows.holdout.toLocaleString('en-US')} held out`);
  return parts.join(', ');
}

/** What the gate compared when production had trained on the held-out slice's earlier rows. */
function unseenSection({ spec, production }: TrainingReportData): string[] {
  const unseen = production?.unseen;
  if (!unseen) return [];
  const title = `Metrics on the ${unseen.rows.toLocaleString('en-US')} held-out rows production has not trained on`;
  const trainedTo = escape(unseen.trainedTo);
  if (unseen.rows === 0) {
    const none = `<p class="note">Production (v${production.versionId}) trained on the events before ${trainedTo}: on every held-out row. The gate compared nothing and kept this version a candidate.</p>`;
    return [section(title, none)];
  }
  const note = `<p class="note">Production (v${production.versionId}) trained on the events before ${trainedTo}, which the slice above begins with: the gate compared the two versions on the rows from there on.</p>`;
  const table = metricsTable(spec, unseen.candidate, { versionId: production.versionId, tasks: unseen.production });
  return [section(title, table + note)];
}

function metricsTable(
  spec: ModelSpec,
  tasks: TaskMetrics,
  production: { versionId: number; tasks: TaskMetrics } | undefined,
): string {
  const header = production
    ? `<tr><th>task</th><th>metric</th><th>this version</th><th>production v${production.versionId}</th><th>Δ</th></tr>`
    : '<tr><th>task</th><th>metric</th><th>value</th></tr>';
  const rows = spec.tasks.flatMap((task) => {
    const ours = tasks[task.name] ?? {};
    const keys = taskType(task).reportMetrics.filter((k) => ours[k] !== undefined);
    return keys.map((key) => {
      const value = ours[key];
      if (!production) return `<tr><td>${escape(task.name)}</td><td>${key}</td><td class="num">${fmt(value)}</td></tr>`;
      const theirs = production.tasks[task.name]?.[key];
      const delta = theirs === undefined ? NaN : value - theirs;
      const higherIsBetter = key === 'auc' || key === 'gauc' || key === 'conditionalAuc';
      const lowerIsBetter = key === 'logloss' || key === 'ece' || key === 'rmse' || key === 'mae';
      const cls =
        !Number.isFinite(delta) || delta === 0 || !(higherIsBetter || lowerIsBetter)
          ? ''
          : delta > 0 === higherIsBetter
            ? 'better'
            : 'worse';
      return `<tr><td>${escape(task.name)}</td><td>${key}</td><td class="num">${fmt(value)}</td><td class="num">${fmt(theirs ?? NaN)}</td><td class="num ${cls}">${Number.isFinite(delta) ? (delta > 0 ? '+' : '') + fmt(delta) : '–'}</td></tr>`;
    });
  });
  return `<table>${header}${rows.join('')}</table>`;
}

function gateSection({ spec, gates }: TrainingReportData): string {
  const names = spec.tasks.map((t) => t.name).filter((name) => gates[name]);
  if (names.length === 0) return '<p class="note">This architecture has no gates (shared-bottom).</p>';
  const experts = Math.max(...names.flatMap((n) => gates[n].experts)) + 1;
  const matrix = (pick: (g: GateReport) => number[] | undefined) =>
    names.map((name) => {
      const row = new Array<number>(experts).fill(NaN);
      const values = pick(gates[name]);
      gates[name].experts.forEach((e, j) => (row[e] = values?.[j] ?? NaN));
      return row;
    });
  const utilisation = heatmap({
    title: 'mean gate weight (task × expert)',
    rows: names,
    columns: Array.from({ length: experts }, (_, e) => `e${e}`),
    values: matrix((g) => g.utilisation),
  });
  const hasLoad = names.some((n) => gates[n].load);
  const load = hasLoad
    ? heatmap({
        title: 'expert load (share routed, top-k)',
        rows: names,
        columns: Array.from({ length: experts }, (_, e) => `e${e}`),
        values: matrix((g) => g.load),
      })
    : '';
  return `<div class="grid">${utilisation}${load}</div><p class="note">A row near one-hot means that task's gate relies on few experts; blank cells are experts a gate does not mix.</p>`;
}

function calibrationSection({ spec, calibration }: TrainingReportData): string {
  const binary = spec.tasks.filter((t) => calibration[t.name]);
  if (binary.length === 0) return '<p class="note">No binary task.</p>';
  const charts = binary.map((task) => {
    const c = calibration[task.name];
    const calibrated = c.method !== 'none';
    return reliabilityChart({
      title: `${task.name} — ${calibrated ? `${c.method}: ECE ${fmt(c.before.ece)} → ${fmt(c.after.ece)}` : `ECE ${fmt(c.before.ece)}`}`,
      curves: [
        { name: calibrated ? 'before' : 'model', points: c.before.curve },
        ...(calibrated ? [{ name: 'after', points: c.after.curve }] : []),
      ],
    });
  });
  return `<div class="grid">${charts.join('')}</div><p class="note">Reliability curves over 15 equal-mass bins: predicted probability against the observed label rate; the diagonal is perfect calibration.</p>`;
}

// ---------------------------------------------------------------------------------------------------------------
// SVG charts

const W = 360;
const H = 230;
const M = { top: 26, right: 14, bottom: 34, left: 50 };

interface LineChart {
  title: string;
  x: number[];
  series: { name: string; values: number[] }[];
  xLabel: string;
  /** An x to mark (the best epoch). */
  marker?: number;
  color?: string;
}

function lineChart({ title, x, series, xLabel, marker, color }: LineChart): string {
  const ys = series.flatMap((s) => s.values).filter(Number.isFinite);
  if (x.length === 0 || ys.length === 0) return emptyChart(title);
  const [x0, x1] = x.length === 1 ? [x[0] - 1, x[0] + 1] : [Math.min(...x), Math.max(...x)];
  const [y0, y1] = padded(Math.min(...ys), Math.max(...ys));
  const sx = scale(x0, x1, M.left, W - M.right);
  const sy = scale(y0, y1, H - M.bottom, M.top);
  const lines = series.map((s, i) => {
    const stroke = color ?? PALETTE[i % PALETTE.length];
    const points = x.flatMap((xi, k) =>
      Number.isFinite(s.values[k]) ? [`${sx(xi).toFixed(1)},${sy(s.values[k]).toFixed(1)}`] : [],
    );
    const dots = points.map(
      (p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5" fill="${stroke}"/>`,
    );
    return `<polyline fill="none" stroke="${stroke}" stroke-width="2" points="${points.join(' ')}"/>${dots.join('')}`;
  });
  const legend =
    series.length > 1
      ? series
          .map(
            (s, i) =>
              `<g transform="translate(${W - M.right - 90},${M.top + 4 + i * 14})"><rect width="10" height="3" y="-4" fill="${PALETTE[i % PALETTE.length]}"/><text x="14">${escape(s.name)}</text></g>`,
          )
          .join('')
      : '';
  const mark =
    marker !== undefined && marker >= x0 && marker <= x1
      ? `<line x1="${sx(marker)}" x2="${sx(marker)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#9ca3af" stroke-dasharray="3 3"/><text x="${sx(marker) + (sx(marker) > W - M.right - 30 ? -3 : 3)}" y="${H - M.bottom - 5}" text-anchor="${sx(marker) > W - M.right - 30 ? 'end' : 'start'}" fill="#6b7280">best</text>`
      : '';
  return svg(
    title,
    axes(sx, sy, [x0, x1], [y0, y1], xLabel, x.length <= 12 ? x : undefined) + mark + lines.join('') + legend,
  );
}

function reliabilityChart({
  title,
  curves,
}: {
  title: string;
  curves: { name: string; points: { meanPrediction: number; labelRate: number }[] }[];
}): string {
  const all = curves.flatMap((c) => c.points.flatMap((p) => [p.meanPrediction, p.labelRate]));
  if (all.length === 0) return emptyChart(title);
  const top = Math.min(1, Math.max(...all) * 1.05 || 1);
  const sx = scale(0, top, M.left, W - M.right);
  const sy = scale(0, top, H - M.bottom, M.top);
  const diagonal = `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(top)}" y2="${sy(top)}" stroke="#9ca3af" stroke-dasharray="4 3"/>`;
  const lines = curves.map((c, i) => {
    const stroke = PALETTE[i % PALETTE.length];
    const pts = c.points.map((p) => [sx(p.meanPrediction), sy(p.labelRate)]);
    return (
      `<polyline fill="none" stroke="${stroke}" stroke-width="2" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>` +
      pts.map(([a, b]) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="2.5" fill="${stroke}"/>`).join('') +
      `<g transform="translate(${M.left + 8},${M.top + 4 + i * 14})"><rect width="10" height="3" y="-4" fill="${stroke}"/><text x="14">${escape(c.name)}</text></g>`
    );
  });
  return svg(title, axes(sx, sy, [0, top], [0, top], 'predicted probability') + diagonal + lines.join(''));
}

function heatmap({
  title,
  rows,
  columns,
  values,
}: {
  title: string;
  rows: string[];
  columns: string[];
  values: number[][];
}): string {
  const left = 90;
  const cell = Math.max(18, Math.min(48, Math.floor((W - left - 10) / columns.length)));
  const height = M.top + rows.length * 26 + 24;
  const width = left + columns.length * cell + 10;
  const cells = rows.flatMap((row, r) =>
    columns.map((_, c) => {
      const v = values[r][c];
      const x = left + c * cell;
      const y = M.top + r * 26;
      if (!Number.isFinite(v)) return `<rect x="${x}" y="${y}" width="${cell - 2}" height="24" fill="#f3f4f6"/>`;
      const fill = `rgba(37, 99, 235, ${(0.06 + 0.94 * Math.min(1, Math.max(0, v))).toFixed(3)})`;
      const ink = v > 0.55 ? '#fff' : '#111827';
      return `<rect x="${x}" y="${y}" width="${cell - 2}" height="24" rx="2" fill="${fill}"><title>${escape(row)} × ${columns[c]}: ${fmt(v)}</title></rect><text x="${x + (cell - 2) / 2}" y="${y + 16}" text-anchor="middle" style="fill:${ink}">${v.toFixed(2).replace(/^0/, '')}</text>`;
    }),
  );
  const rowLabels = rows.map(
    (row, r) => `<text x="${left - 8}" y="${M.top + r * 26 + 16}" text-anchor="end">${escape(row)}</text>`,
  );
  const colLabels = columns.map(
    (col, c) =>
      `<text x="${left + c * cell + (cell - 2) / 2}" y="${M.top + rows.length * 26 + 14}" text-anchor="middle">${col}</text>`,
  );
  return svgSized(title, width, height, cells.join('') + rowLabels.join('') + colLabels.join(''));
}

function axes(
  sx: (v: number) => number,
  sy: (v: number) => number,
  [x0, x1]: [number, number],
  [y0, y1]: [number, number],
  xLabel: string,
  xTicks?: number[],
): string {
  const yTicks = ticks(y0, y1);
  const xs = xTicks ?? ticks(x0, x1);
  const grid = yTicks
    .map(
      (t) =>
        `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#f3f4f6"/><text x="${M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`,
    )
    .join('');
  const xt = xs
    .map((t) => `<text x="${sx(t).toFixed(1)}" y="${H - M.bottom + 14}" text-anchor="middle">${fmt(t)}</text>`)
    .join('');
  return (
    grid +
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#9ca3af"/>` +
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#9ca3af"/>` +
    xt +
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 4}" text-anchor="middle" fill="#6b7280">${escape(xLabel)}</text>`
  );
}

function svg(title: string, body: string): string {
  return svgSized(title, W, H, body);
}

function svgSized(title: string, width: number, height: number, body: string): string {
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(title)}"><text class="title" x="4" y="14">${escape(title)}</text>${body}</svg>`;
}

function emptyChart(title: string): string {
  return svg(title, `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#6b7280">no data</text>`);
}

function scale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

function padded(lo: number, hi: number): [number, number] {
  const span = hi - lo || Math.abs(hi) * 0.1 || 1;
  return [lo - span * 0.08, hi + span * 0.08];
}

/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Number.isInteger(v) && Math.abs(v) >= 100) return v.toLocaleString('en-US');
  return Number(v.toPrecision(4)).toString();
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "no training row labels liked, spend: their towers learnt nothing, their scores are untrained". */
export function unlabelledText(tasks: readonly string[]): string {
  return `no training row labels ${tasks.join(', ')}: ${tasks.length > 1 ? 'their towers learnt nothing, their scores are' : 'its tower learnt nothing, its scores are'} untrained`;
}

/** "item_id: 12 ids left out of vocabulary (maxVocab reached)", per table. */
export function overflowText(overflow: readonly VocabularyOverflow[]): string {
  return overflow.map((o) => `${o.feature}: ${o.leftOut} ids left out of vocabulary (maxVocab reached)`).join('; ');
}
