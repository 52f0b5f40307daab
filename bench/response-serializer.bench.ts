/**
 * What writing one /v1/score response costs the event loop: CPU and bytes allocated per response of N candidates
 * (500 by default) of the ESMM example (examples/esmm.spec.json: click, and conversion conditional on it; four
 * experts), written by the API's serialiser (score-response.serializer.ts: a writer built from the DTOs' metadata, fed
 * the ranking's columns), and the same JSON the obvious way as the peer: an object per item and per item's scores,
 * then JSON.stringify. Allocation is V8's sampling heap profiler's estimate, collected objects included. The calls
 * cycle through RESPONSES responses of different random scores, as requests for different users are: V8 caches the
 * strings of numbers it converted lately, and one response written again and again would convert none.
 *
 * Run through swc (test/fixtures/swc.register.js), not tsx: the serialiser reads the DTOs' decorator metadata, which
 * esbuild does not emit.
 *
 *   npm run bench:serializer [-- --calls 5000 --candidates 500]
 */
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

import { conditionalTasks, gateOfTask, parseModelSpec, topologyOf, type ScoreResult } from '@app/mmoe/serving';
import { compileFusion } from '@app/registry';

import { serializeScoreResponse, type ScoredResponse } from '../apps/api/src/scoring/dto/score-response.serializer';
import type { ScoredItemDto, ScoreResponseDto } from '../apps/api/src/scoring/dto/score.dto';
import { rank } from '../apps/api/src/scoring/ranking';
import { cpuModel, markdownTable, positiveIntFlag } from './bench.util';

const spec = parseModelSpec(JSON.parse(readFileSync(path.join(__dirname, '../examples/esmm.spec.json'), 'utf8')));
const tasks = spec.tasks.map((task) => task.name);
const conditional = conditionalTasks(spec.tasks).map((t) => tasks[t]);
const topology = topologyOf(spec);
/** Each task's gate and its width (every task has one in an MMoE). */
const gates = spec.tasks.map((_, t) => {
  const gate = gateOfTask(topology, t)!;
  return { gate, width: topology.gates[gate].experts.length };
});

/** Responses the calls cycle through: 1,000 × 2,000 scores, beyond V8's cache of number strings. */
const RESPONSES = 1_000;

function scoredResponse(candidates: number, explain: boolean): ScoredResponse {
  const column = (length: number) => Float32Array.from({ length }, () => Math.random());
  const result: ScoreResult = {
    scores: tasks.map(() => column(candidates)),
    conditional: conditional.map(() => column(candidates)),
    ...(explain && { gateWeights: topology.gates.map((g) => column(g.experts.length * candidates)) }),
  };
  const itemIds = Array.from({ length: candidates }, (_, i) => `item-${i}`);
  const unknown = Uint8Array.from({ length: candidates }, (_, i) => (i % 50 === 0 ? 1 : 0));
  const fusion = compileFusion({ type: 'sum', weights: { click: 1, conversion: 4 } }, spec.tasks);
  return {
    requestId: 'r-1',
    model: { versionId: 7, role: 'production', spec },
    fusion: { type: 'sum', source: 'model' },
    ranking: rank(itemIds, unknown, result, fusion),
    userUnknown: false,
  };
}

/** The peer: the DTO's objects, then JSON.stringify. */
function viaObjects({ requestId, model, fusion, ranking }: ScoredResponse): string {
  const { itemIds, order, fused, unknown, result } = ranking;
  const items = Array.from(order, (i): ScoredItemDto => {
    const item: ScoredItemDto = {
      itemId: itemIds[i],
      score: fused[i],
      scores: Object.fromEntries(tasks.map((name, t) => [name, result.scores[t][i]])),
    };
    if (result.conditional)
      item.conditional = Object.fromEntries(conditional.map((name, c) => [name, result.conditional![c][i]]));
    if (unknown[i]) item.unknown = true;
    if (result.gateWeights) {
      const weights = result.gateWeights;
      item.gates = Object.fromEntries(
        gates.map(({ gate, width }, t) => [tasks[t], Array.from(weights[gate].subarray(i * width, (i + 1) * width))]),
      );
    }
    return item;
  });
  const response: ScoreResponseDto = { requestId, modelVersion: model.versionId, modelRole: model.role, fusion, items };
  return JSON.stringify(response);
}

/** The same response: every number equal as a float32 (the serialiser writes a float32 score as its shortest decimal). */
function sameResponse(a: string, b: string): boolean {
  const asFloat32 = (json: string) =>
    JSON.stringify(JSON.parse(json), (_key, value: unknown) =>
      typeof value === 'number' ? Math.fround(value) : value,
    );
  return asFloat32(a) === asFloat32(b);
}

async function allocatedPerCall(call: () => unknown, calls: number): Promise<number> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < calls; i++) call();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  type Node = { selfSize: number; children: Node[] };
  const total = (node: Node): number => node.children.reduce((sum, child) => sum + total(child), node.selfSize);
  return total(profile.head as Node) / calls;
}

function cpuMsPerCall(call: () => unknown, calls: number): number {
  for (let i = 0; i < calls / 10; i++) call();
  const started = process.cpuUsage();
  for (let i = 0; i < calls; i++) call();
  const { user, system } = process.cpuUsage(started);
  return (user + system) / 1000 / calls;
}

async function main(): Promise<void> {
  const calls = positiveIntFlag('calls', 5_000);
  const candidates = positiveIntFlag('candidates', 500);
  const rows: string[][] = [];
  for (const explain of [false, true]) {
    const responses = Array.from({ length: RESPONSES }, () => scoredResponse(candidates, explain));
    for (const scored of responses.slice(0, 10))
      if (!sameResponse(serializeScoreResponse(scored).toString(), viaObjects(scored)))
        throw new Error('the two ways wrote different JSON');
    let next = 0;
    const cycled = (write: (scored: ScoredResponse) => unknown) => () => write(responses[next++ % RESPONSES]);
    for (const [way, call] of [
      ['serializeScoreResponse (the API’s)', cycled(serializeScoreResponse)],
      ['DTO objects + JSON.stringify', cycled(viaObjects)],
    ] as const) {
      const cpu = cpuMsPerCall(call, calls);
      const kB = (await allocatedPerCall(call, Math.min(calls, 1_000))) / 1000;
      const size = Buffer.byteLength(call() as string | Buffer);
      rows.push([way, explain ? 'yes' : 'no', cpu.toFixed(3), kB.toFixed(0), (size / 1000).toFixed(1)]);
    }
  }
  console.log(`\nCPU: ${cpuModel()}; ${candidates} candidates, ${calls} calls each (after ${calls / 10} warm-up)`);
  console.log(markdownTable(['writer', 'explain', 'CPU ms / response', 'kB allocated / response', 'kB of JSON'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
