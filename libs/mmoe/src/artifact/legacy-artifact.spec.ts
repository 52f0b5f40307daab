import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { initBackend } from '../backend/backend';
import { MultiTaskModel } from '../mmoe.model';
import { lossBalancingOf } from '../model-spec/model-spec.schema';
import { createScorer } from '../serving/scorer.factory';

/**
 * An artifact written by main's code before AITM, task relations and training.lossBalancing (commit 2c6d546; see the
 * fixture README): ESMM, uncertainty weighting under its old spelling, a sequence feature, Platt scaling.
 */
const FIXTURE = join(__dirname, '../../../../test/fixtures/artifacts/main-2c6d546');

beforeAll(() => initBackend('wasm'));

describe('an artifact written before this version', () => {
  const bytes = readFileSync(`${FIXTURE}.mmoe`);
  const expected = JSON.parse(readFileSync(`${FIXTURE}.json`, 'utf8')) as {
    records: Record<string, string>[];
    scores: number[][];
    conditional: number[][];
  };

  it('loads unchanged and scores as it did, in tfjs and in ONNX Runtime', async () => {
    const model = MultiTaskModel.fromArtifact(bytes);
    try {
      expect(lossBalancingOf(model.spec)).toEqual({ method: 'uncertainty' });
      const tfjs = model.predictRecords(expected.records);
      tfjs.scores.forEach((s, t) => s.forEach((p, i) => expect(p).toBeCloseTo(expected.scores[t][i], 6)));
      tfjs.conditional!.forEach((s, c) => s.forEach((p, i) => expect(p).toBeCloseTo(expected.conditional[c][i], 6)));
      const scorer = await createScorer(model);
      try {
        const onnx = await scorer.score(model.encoder.encodeRecords(expected.records));
        onnx.scores.forEach((s, t) => s.forEach((p, i) => expect(p).toBeCloseTo(expected.scores[t][i], 4)));
      } finally {
        await scorer.dispose();
      }
      // Saved again, it loads again with the same weights.
      const again = MultiTaskModel.fromArtifact(model.toArtifact());
      expect([...again.network.snapshot()]).toEqual([...model.network.snapshot()]);
      again.dispose();
    } finally {
      model.dispose();
    }
  });
});
