import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { CsvReader, initBackend, loadModelSpec, MultiTaskModel, ParallelTimings, RawTable } from '@app/mmoe';

import { log } from './bench.util';

export interface AdultEpochResult {
  threads: number;
  trainRows: number;
  /** The one epoch's training, validation excluded. */
  epochSeconds: number;
  /** MultiTaskModel.train end to end: preprocessing, threads' start-up, the epoch, validation. */
  wallSeconds: number;
  examplesPerSec: number;
  validAuc: number;
  parallel?: ParallelTimings;
}

/** One full epoch on the UCI Adult training set with examples/adult.spec.json, on wasm with `threads` threads. */
export async function adultEpoch(repo: string, sharedDir: string, threads: number): Promise<AdultEpochResult> {
  await initBackend('wasm');
  const csv = await gunzipped(path.join(sharedDir, 'data', 'adult', 'adult_train.csv.gz'));
  const spec = await loadModelSpec(path.join(repo, 'examples', 'adult.spec.json'));
  const oneEpoch = { ...spec, training: { ...spec.training, epochs: 1 } };
  const table = new RawTable(oneEpoch);
  for await (const row of new CsvReader(csv).rows()) table.add(row.values);
  const started = performance.now();
  let epochSeconds = 0;
  const { model, summary } = await MultiTaskModel.train(oneEpoch, table, undefined, {
    threads,
    onEpochEnd: (e) => (epochSeconds = e.seconds),
  });
  const wallSeconds = (performance.now() - started) / 1000;
  model.dispose();
  const trainRows = Math.round(table.size * (1 - spec.training.validationFraction));
  log(`[adult/${threads} threads] epoch ${epochSeconds.toFixed(2)} s, ${Math.round(summary.examplesPerSec)} ex/s`);
  return {
    threads: summary.threads,
    trainRows,
    epochSeconds: trainRows / summary.examplesPerSec,
    wallSeconds,
    examplesPerSec: summary.examplesPerSec,
    validAuc: summary.valid.tasks.income.auc,
    parallel: summary.parallel,
  };
}

async function gunzipped(file: string): Promise<string> {
  const out = path.join(tmpdir(), `mmoe-bench-${path.basename(file, '.gz')}`);
  if (!existsSync(out)) await pipeline(createReadStream(file), createGunzip(), createWriteStream(out));
  return out;
}
