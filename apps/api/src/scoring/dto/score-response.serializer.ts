import { conditionalTasks, gateOfTask, topologyOf, type ModelSpec } from '@app/mmoe/serving';

import type { Ranking } from '../ranking';
import type { FusionUsedDto } from './score.dto';

/** A scored request, as the service answers it: written out as ScoreResponseDto's JSON. */
export interface ScoredResponse {
  requestId: string;
  model: { versionId: number; role: 'production' | 'canary'; spec: ModelSpec };
  fusion: FusionUsedDto;
  ranking: Ranking;
  userUnknown: boolean;
}

/** A spec's response keys, JSON-encoded once per version: `"click":`, and where each conditional and gate column is. */
interface ResponseLayout {
  tasks: string[];
  conditional: string[];
  gates: { key: string; gate: number; width: number }[];
}

const layouts = new WeakMap<ModelSpec, ResponseLayout>();

function layoutOf(spec: ModelSpec): ResponseLayout {
  let layout = layouts.get(spec);
  if (!layout) {
    const key = (name: string, i: number) => `${i > 0 ? ',' : ''}${JSON.stringify(name)}:`;
    const topology = topologyOf(spec);
    const gated = spec.tasks.flatMap((task, t) => {
      const gate = gateOfTask(topology, t);
      return gate === undefined ? [] : [{ name: task.name, gate, width: topology.gates[gate].experts.length }];
    });
    layout = {
      tasks: spec.tasks.map((task, t) => key(task.name, t)),
      conditional: conditionalTasks(spec.tasks).map((t, c) => key(spec.tasks[t].name, c)),
      gates: gated.map(({ name, gate, width }, i) => ({ key: key(name, i), gate, width })),
    };
    layouts.set(spec, layout);
  }
  return layout;
}

/** A number as JSON.stringify writes it (a non-finite one is null). */
function num(x: number): string {
  return Number.isFinite(x) ? '' + x : 'null';
}

/**
 * ScoreResponseDto's JSON, written straight from the ranking's columns: the items in ranked order with their fused
 * score, per-task scores (conditional and gate weights when present) and the unknown flag. For 500 candidates this
 * allocates half what building the DTO's objects and serialising them did (333 against 709 kB, 0.15 against 0.23 ms
 * of CPU in the measurement of issue 19). score-response.serializer.spec.ts holds it to JSON.stringify of the DTO's
 * objects and to the DTOs' own schema (dtoJsonSchema: every field documented, with its type).
 */
export function serializeScoreResponse({ requestId, model, fusion, ranking, userUnknown }: ScoredResponse): string {
  const layout = layoutOf(model.spec);
  const { itemIds, order, fused, unknown } = ranking;
  const { scores, conditional, gateWeights } = ranking.result;
  let json =
    `{"requestId":${JSON.stringify(requestId)},"modelVersion":${model.versionId},"modelRole":"${model.role}",` +
    `"fusion":{"type":"${fusion.type}","source":"${fusion.source}"},"items":[`;
  for (let r = 0; r < order.length; r++) {
    const i = order[r];
    json += `${r > 0 ? ',' : ''}{"itemId":${JSON.stringify(itemIds[i])},"score":${num(fused[i])},"scores":{`;
    for (let t = 0; t < layout.tasks.length; t++) json += layout.tasks[t] + num(scores[t][i]);
    json += '}';
    if (conditional) {
      json += ',"conditional":{';
      for (let c = 0; c < layout.conditional.length; c++) json += layout.conditional[c] + num(conditional[c][i]);
      json += '}';
    }
    if (unknown[i]) json += ',"unknown":true';
    if (gateWeights) {
      json += ',"gates":{';
      for (const { key, gate, width } of layout.gates) {
        const weights = gateWeights[gate];
        json += `${key}[`;
        for (let e = 0; e < width; e++) json += (e > 0 ? ',' : '') + num(weights[i * width + e]);
        json += ']';
      }
      json += '}';
    }
    json += '}';
  }
  return json + (userUnknown ? '],"userUnknown":true}' : ']}');
}
