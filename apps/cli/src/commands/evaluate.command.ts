import { loadTable } from '@app/mmoe';

import { CliContext } from '../cli.context';
import { loadModelDir } from './model.files';

export interface EvaluateArgs {
  model: string;
  data: string;
  /** A column grouping the rows (user id): binary tasks then report gauc. */
  groupBy?: string;
}

/**
 * Prints `{"tasks": {<task>: {auc, gauc, logloss, ece, …} | {rmse, mae, …}}, "gates": …, "calibration": …}` to
 * stdout; `calibration` holds each binary task's ECE, log loss and reliability curve before and after calibration.
 */
export async function evaluateCommand(args: EvaluateArgs, ctx: CliContext): Promise<void> {
  const model = await loadModelDir(args.model);
  try {
    const loaded = await loadTable(args.data, model.spec, ctx.onBadRow, true, { groupBy: args.groupBy });
    ctx.reportSkipped(args.data, loaded);
    // Metrics of no rows are all null: a run that read nothing has nothing to report, and says so.
    if (loaded.table.size === 0) throw new Error(`${args.data}: no readable rows (${loaded.skipped} skipped)`);
    const report = model.evaluate(loaded.table);
    const { examples, tasks, gates, calibration } = report;
    ctx.print({ examples, skipped: loaded.skipped, tasks, gates, calibration });
  } finally {
    model.dispose();
  }
}
