import { conditionalTasks, gateOfTask, topologyOf, type ModelSpec } from '@app/mmoe/serving';

import { dtoJsonWriter } from '../../platform/dto-json.writer';
import type { Ranking } from '../ranking';
import { ScoreResponseDto, type FusionUsedDto } from './score.dto';

/** A scored request, as the service answers it: written out as ScoreResponseDto's JSON. */
export interface ScoredResponse {
  requestId: string;
  model: { versionId: number; role: 'production' | 'canary'; spec: ModelSpec };
  fusion: FusionUsedDto;
  ranking: Ranking;
  userUnknown: boolean;
}

/** A spec's names in the response, once per version: its tasks, its conditional ones, and each gated task's gate. */
interface ResponseLayout {
  tasks: string[];
  conditional: string[];
  gated: string[];
  gates: { gate: number; width: number }[];
}

const layouts = new WeakMap<ModelSpec, ResponseLayout>();

function layoutOf(spec: ModelSpec): ResponseLayout {
  let layout = layouts.get(spec);
  if (!layout) {
    const topology = topologyOf(spec);
    const gated = spec.tasks.flatMap((task, t) => {
      const gate = gateOfTask(topology, t);
      return gate === undefined ? [] : [{ name: task.name, gate, width: topology.gates[gate].experts.length }];
    });
    layout = {
      tasks: spec.tasks.map((task) => task.name),
      conditional: conditionalTasks(spec.tasks).map((t) => spec.tasks[t].name),
      gated: gated.map(({ name }) => name),
      gates: gated.map(({ gate, width }) => ({ gate, width })),
    };
    layouts.set(spec, layout);
  }
  return layout;
}

const writeResponse = dtoJsonWriter(ScoreResponseDto);

/**
 * ScoreResponseDto's JSON (UTF-8), written by the writer built from the DTOs' own metadata (dtoJsonWriter: fields,
 * order, types and required flags) from the ranking's columns: the items in ranked order with their fused score,
 * per-task scores (conditional and gate weights when present) and the unknown flag, no object built per item. The
 * columns below are typed by the DTOs' fields: a field added to a DTO does not compile until it has its column here.
 * Building the DTO's objects and serialising them allocated 709 kB for 500 candidates; concatenating the JSON as a
 * string 333 kB, and as much again to flatten and write it (V8's sampling heap profiler through the API: 247 kB in
 * the serialiser, 57 in Buffer.byteLength, 57 in the socket write, of 607 kB per request); written as bytes into a
 * reused buffer (JsonBytes), only the numbers' strings and the answer's copy. score-response.serializer.spec.ts holds
 * the JSON to JSON.stringify of the DTO's objects.
 */
export function serializeScoreResponse({ requestId, model, fusion, ranking, userUnknown }: ScoredResponse): Buffer {
  const layout = layoutOf(model.spec);
  const { itemIds, order, fused, unknown } = ranking;
  const { scores, conditional, gateWeights } = ranking.result;
  return writeResponse({
    requestId,
    modelVersion: model.versionId,
    modelRole: model.role,
    fusion,
    items: {
      order,
      columns: {
        itemId: itemIds,
        score: fused,
        scores: { keys: layout.tasks, columns: scores },
        conditional: conditional && { keys: layout.conditional, columns: conditional },
        unknown,
        gates: gateWeights && {
          keys: layout.gated,
          columns: layout.gates.map(({ gate, width }) => ({ values: gateWeights[gate], width })),
        },
      },
    },
    userUnknown: userUnknown || undefined,
  });
}
