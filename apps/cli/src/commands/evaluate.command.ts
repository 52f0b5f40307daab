import { CliContext } from '../cli.context';
import { loadTable } from '../table.loader';
import { loadModelDir } from './model.files';

export interface EvaluateArgs {
  model: string;
  data: string;
}

/** Prints `{"tasks": {<task>: {auc, logloss, …} | {rmse, mae, …}}, "gates": …}` to stdout. */
export async function evaluateCommand(args: EvaluateArgs, ctx: CliContext): Promise<void> {
  const model = await loadModelDir(args.model);
  try {
    const loaded = await loadTable(args.data, model.spec, ctx.onBadRow, true);
    ctx.reportSkipped(args.data, loaded);
    const report = model.evaluate(loaded.table);
    ctx.print({ examples: report.examples, skipped: loaded.skipped, tasks: report.tasks, gates: report.gates });
  } finally {
    model.dispose();
  }
}
