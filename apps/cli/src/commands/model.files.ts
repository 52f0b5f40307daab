import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { MultiTaskModel } from '@app/mmoe';

/** A model directory written by `train`: the artifact plus human-readable metrics. */
export const ARTIFACT_FILE = 'model.mmoe';
/** The training report beside it: one self-contained HTML file. */
export const REPORT_FILE = 'report.html';

export async function loadModelDir(dir: string): Promise<MultiTaskModel> {
  const path = join(dir, ARTIFACT_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new Error(`${path}: no model artifact there (train one with \`cli train --out ${dir}\`)`);
  }
  try {
    return MultiTaskModel.fromArtifact(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
