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
  tasks: Uint8Array[];
  conditional: Uint8Array[];
  gates: { key: Uint8Array; gate: number; width: number }[];
  /** Bytes an item can take beyond its id (its keys, and 24 per number at most). */
  itemBytes: number;
}

const layouts = new WeakMap<ModelSpec, ResponseLayout>();

function layoutOf(spec: ModelSpec): ResponseLayout {
  let layout = layouts.get(spec);
  if (!layout) {
    const key = (name: string, i: number) => Buffer.from(`${i > 0 ? ',' : ''}${JSON.stringify(name)}:`);
    const topology = topologyOf(spec);
    const gated = spec.tasks.flatMap((task, t) => {
      const gate = gateOfTask(topology, t);
      return gate === undefined ? [] : [{ name: task.name, gate, width: topology.gates[gate].experts.length }];
    });
    const tasks = spec.tasks.map((task, t) => key(task.name, t));
    const conditional = conditionalTasks(spec.tasks).map((t, c) => key(spec.tasks[t].name, c));
    const gates = gated.map(({ name, gate, width }, i) => ({ key: key(name, i), gate, width }));
    const keys = [...tasks, ...conditional, ...gates.map((g) => g.key)].reduce((n, k) => n + k.length, 0);
    const numbers = 1 + tasks.length + conditional.length + gates.reduce((n, g) => n + g.width, 0);
    layout = { tasks, conditional, gates, itemBytes: 128 + keys + 25 * numbers };
    layouts.set(spec, layout);
  }
  return layout;
}

/** A number as JSON.stringify writes it (a non-finite one is null). */
function num(x: number): string {
  return Number.isFinite(x) ? '' + x : 'null';
}

/** Printable ASCII but `"` and `\`: a string of only these is its own JSON between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * The response's bytes, written into one buffer that every response reuses (the answer is a copy of its bytes, off
 * V8's heap): building the JSON as a string allocated 5× its size in the young generation (ropes, then flattened to
 * measure and write it), the largest share of a score request's garbage (see serializeScoreResponse).
 */
class JsonBytes {
  private bytes = Buffer.allocUnsafe(64 * 1024);
  private length = 0;

  start(): void {
    this.length = 0;
  }

  /** Room for `n` more bytes: the writes below assume it (reserved per item, not per piece). */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.length + n));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  /** A string known to be ASCII (punctuation, numbers), byte by byte. */
  ascii(s: string): void {
    const { bytes } = this;
    let at = this.length;
    for (let i = 0; i < s.length; i++) bytes[at++] = s.charCodeAt(i);
    this.length = at;
  }

  /** Bytes encoded once (a spec's keys). */
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.length);
    this.length += b.length;
  }

  /** A string as a JSON string: between quotes as it is when nothing in it needs escaping, else as UTF-8. */
  string(s: string): void {
    if (PLAIN.test(s)) {
      this.bytes[this.length++] = 0x22;
      this.ascii(s);
      this.bytes[this.length++] = 0x22;
    } else this.length += this.bytes.write(JSON.stringify(s), this.length, 'utf8');
  }

  /** A copy of what was written, for the response to own. */
  done(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.bytes.copy(out, 0, 0, this.length);
    return out;
  }
}

const out = new JsonBytes();

/**
 * ScoreResponseDto's JSON (UTF-8), written straight from the ranking's columns: the items in ranked order with their
 * fused score, per-task scores (conditional and gate weights when present) and the unknown flag. Building the DTO's
 * objects and serialising them allocated 709 kB for 500 candidates; concatenating the JSON as a string 333 kB, and
 * as much again to flatten and write it (V8's sampling heap profiler through the API: 247 kB in the serialiser, 57
 * in Buffer.byteLength, 57 in the socket write, of 607 kB per request); written as bytes, only the numbers' strings.
 * score-response.serializer.spec.ts holds it to JSON.stringify of the DTO's objects and to the DTOs' own schema
 * (dtoJsonSchema: every field documented, with its type).
 */
export function serializeScoreResponse({ requestId, model, fusion, ranking, userUnknown }: ScoredResponse): Buffer {
  const layout = layoutOf(model.spec);
  const { itemIds, order, fused, unknown } = ranking;
  const { scores, conditional, gateWeights } = ranking.result;
  out.start();
  out.reserve(256);
  out.ascii('{"requestId":');
  out.string(requestId);
  out.ascii(`,"modelVersion":${model.versionId},"modelRole":"${model.role}",`);
  out.ascii(`"fusion":{"type":"${fusion.type}","source":"${fusion.source}"},"items":[`);
  for (let r = 0; r < order.length; r++) {
    const i = order[r];
    out.reserve(layout.itemBytes + 6 * itemIds[i].length + 2);
    out.ascii(r > 0 ? ',{"itemId":' : '{"itemId":');
    out.string(itemIds[i]);
    out.ascii(',"score":');
    out.ascii(num(fused[i]));
    out.ascii(',"scores":{');
    for (let t = 0; t < layout.tasks.length; t++) {
      out.raw(layout.tasks[t]);
      out.ascii(num(scores[t][i]));
    }
    out.ascii('}');
    if (conditional) {
      out.ascii(',"conditional":{');
      for (let c = 0; c < layout.conditional.length; c++) {
        out.raw(layout.conditional[c]);
        out.ascii(num(conditional[c][i]));
      }
      out.ascii('}');
    }
    if (unknown[i]) out.ascii(',"unknown":true');
    if (gateWeights) {
      out.ascii(',"gates":{');
      for (const { key, gate, width } of layout.gates) {
        const weights = gateWeights[gate];
        out.raw(key);
        out.ascii('[');
        for (let e = 0; e < width; e++) {
          if (e > 0) out.ascii(',');
          out.ascii(num(weights[i * width + e]));
        }
        out.ascii(']');
      }
      out.ascii('}');
    }
    out.ascii('}');
  }
  out.reserve(32);
  out.ascii(userUnknown ? '],"userUnknown":true}' : ']}');
  return out.done();
}
