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
    const report = model.evaluate(loaded.table);
    const { examples, tasks, gates, calibration } = report;
    ctx.print({ examples, skipped: loaded.skipped, tasks, gates, calibration });
  } finally {
    model.dispose();
  }
}
