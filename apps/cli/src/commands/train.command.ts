import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { loadModelSpec, loadTable, MultiTaskModel, SpecValidationError } from '@app/mmoe';
import { overflowText, renderTrainingReport, unlabelledText } from '@app/mmoe/report/training-report';

import { CliContext } from '../cli.context';
import { createProgressReporter } from '../progress.reporter';
import { ARTIFACT_FILE, REPORT_FILE } from './model.files';
import { ensureOutputDir, writeOutput } from './output.files';

export interface TrainArgs {
  data: string;
  valid?: string;
  spec: string;
  out: string;
  /** Overrides training.threads. */
  threads?: number;
}

export async function trainCommand(args: TrainArgs, ctx: CliContext): Promise<void> {
  const spec = await loadModelSpec(args.spec);
  await ensureOutputDir(args.out, '--out');
  const train = await loadTable(args.data, spec, ctx.onBadRow, true);
  ctx.reportSkipped(args.data, train);
  const valid = args.valid ? await loadTable(args.valid, spec, ctx.onBadRow, true) : undefined;
  if (args.valid && valid) ctx.reportSkipped(args.valid, valid);
  ctx.log(
    `training ${spec.model.architecture} on ${train.table.size} rows` +
      (valid
        ? `, validating on ${valid.table.size} rows of ${args.valid}`
        : `, holding out ${+(spec.training.validationFraction * 100).toPrecision(3)}% for validation`),
  );
  const progress = createProgressReporter(ctx.stderr);
  const { model, summary } = await MultiTaskModel.train(spec, train.table, valid?.table, {
    onProgress: (p) => progress.onProgress(p),
    onEpochEnd: (e) => progress.onEpochEnd(e),
    threads: args.threads,
  }).catch((e: unknown) => {
    // Some of the spec's limits are known only once the data's vocabularies are fitted: named as the loader names them.
    if (e instanceof SpecValidationError) e.message = `${args.spec}: ${e.message}`;
    throw e;
  });
  progress.done();
  if (summary.vocabularyOverflow.length > 0)
    ctx.log(`warning: ${overflowText(summary.vocabularyOverflow)}; raise maxVocab to make room`);
  if (summary.unlabelledTasks.length > 0) ctx.log(`warning: ${unlabelledText(summary.unlabelledTasks)}`);
  try {
    const metrics = {
      bestEpoch: summary.bestEpoch,
      epochsRun: summary.epochsRun,
      stoppedEarly: summary.stoppedEarly,
      valid: summary.valid,
    };
    const validated = summary.valid.examples;
    const contents: [string, string | Buffer][] = [
      [ARTIFACT_FILE, model.toArtifact({ training: { ...metrics, history: summary.history } })],
      ['metrics.json', `${JSON.stringify({ ...metrics, history: summary.history }, null, 2)}\n`],
      [
        REPORT_FILE,
        renderTrainingReport({
          title: `Training report — ${spec.model.architecture}, ${args.out}`,
          spec,
          parameters: model.parameterCount(),
          backend: ctx.backend ?? 'unknown',
          rows: { train: valid ? train.table.size : train.table.size - validated, validation: validated },
          training: summary,
          evaluatedOn: 'validation',
          vocabularyOverflow: summary.vocabularyOverflow,
          ...summary.valid,
          createdAt: new Date().toISOString(),
        }),
      ],
    ];
    // All three or none: a failure leaves the model that was there whole.
    await writeOutput(
      contents.map(([name, data]) => ({ path: join(args.out, name), write: (path) => writeFile(path, data) })),
      '--out',
    );
    ctx.print({
      out: args.out,
      report: join(args.out, REPORT_FILE),
      parameters: model.parameterCount(),
      bestEpoch: summary.bestEpoch,
      epochsRun: summary.epochsRun,
      examplesPerSec: Math.round(summary.examplesPerSec),
      threads: summary.threads,
      seconds: +summary.seconds.toFixed(1),
      valid: summary.valid.tasks,
    });
  } finally {
    model.dispose();
  }
}
