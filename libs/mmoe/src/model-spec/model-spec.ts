import { readFile } from 'node:fs/promises';

import { taskType } from '../tasks/task-types';
import { sha256Hex } from '../util/hash';
import { decodeTextFile } from '../util/utf8';
import { ModelSpec, modelSpecSchema, TaskSpec } from './model-spec.schema';

export class SpecValidationError extends Error {
  constructor(readonly problems: { path: string; message: string }[]) {
    // The first 50 problems: 200,000 duplicate features printed 12 MB of them.
    const listed = problems.slice(0, 50).map((p) => `  - ${p.path}: ${p.message}`);
    if (problems.length > listed.length) listed.push(`  … and ${problems.length - listed.length} more`);
    super(`Invalid model spec:\n${listed.join('\n')}`);
    this.name = 'SpecValidationError';
  }
}

/** Validates a parsed spec and fills in defaults; every problem is reported with its path (e.g. `model.gate.k`). */
export function parseModelSpec(input: unknown): ModelSpec {
  const result = modelSpecSchema.safeParse(input);
  if (result.success) return result.data;
  throw new SpecValidationError(
    result.error.issues.map((issue) => ({
      path: issue.path.length
        ? issue.path
            .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
            .join('')
            .replace(/^\./, '')
        : '(root)',
      message: issue.message,
    })),
  );
}

export async function loadModelSpec(path: string): Promise<ModelSpec> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    // Node's own message names no file for some of them (EISDIR: "illegal operation on a directory, read").
    throw new Error(`${path}: cannot read the spec (${(e as Error).message})`);
  }
  let text: string;
  try {
    text = decodeTextFile(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(jsonErrorIn(path, text, (e as Error).message));
  }
  try {
    return parseModelSpec(json);
  } catch (e) {
    if (e instanceof SpecValidationError) e.message = `${path}: ${e.message}`;
    throw e;
  }
}

/**
 * JSON.parse's complaint about `text` as `path:line, column c: not valid JSON (…)`, as the CSV reader names its
 * errors: where V8 says (`… in JSON at position 14`, or the end of the input), else where failingPrefix finds it.
 */
function jsonErrorIn(path: string, text: string, message: string): string {
  const position = /^(.*) in JSON at position (\d+)/.exec(message);
  const [at, reason] = position
    ? [Number(position[2]), position[1]]
    : /^Unexpected end of JSON input/.test(message)
      ? [text.length, message]
      : // V8 names an unexpected token without its place: `Unexpected token 'N', "{"a": NaN}" is not valid JSON`.
        // Searched for in a spec file's size only: each probe parses up to the whole text (8 s for 5 MB).
        text.length <= MAX_SEARCHED_CHARS
        ? [failingPrefix(text) - 1, withoutExcerpt(message)]
        : [-1, message];
  if (at < 0) return `${path}: not valid JSON (${reason})`;
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const column = at - before.lastIndexOf('\n');
  return `${path}:${line}, column ${column}: not valid JSON (${reason})`;
}

/** `Unexpected token 'N'` of `Unexpected token 'N', ..."tasks": NaN}" is not valid JSON` (the token may be a quote). */
function withoutExcerpt(message: string): string {
  const end = message.indexOf("', ");
  return end < 0 ? message : message.slice(0, end + 1);
}

/**
 * The length of the shortest prefix of `text` (invalid JSON) that JSON.parse refuses for what it holds, not for
 * where it stops: its last character is where the parse fails. A prefix the input merely ends too soon (`{"a": tr`,
 * `"ab`: an error at its end) is fine so far, and every prefix longer than a refused one is refused, so a binary
 * search finds it in a few parses of a spec file.
 */
const MAX_SEARCHED_CHARS = 1 << 20;

function failingPrefix(text: string): number {
  const refused = (length: number): boolean => {
    try {
      JSON.parse(text.slice(0, length));
      return false;
    } catch (e) {
      const { message } = e as Error;
      const position = /in JSON at position (\d+)/.exec(message);
      return !/^Unexpected end of JSON input/.test(message) && !(position && Number(position[1]) >= length);
    }
  };
  let [fine, failing] = [0, text.length];
  while (failing - fine > 1) {
    const mid = (fine + failing) >>> 1;
    if (refused(mid)) failing = mid;
    else fine = mid;
  }
  return failing;
}

/** How a task is judged: binary tasks by AUC (higher is better), regression tasks by RMSE (lower is better). */
export type BinaryGateMetric = 'auc' | 'gauc';

/** A task is judged by its type's metric: AUC (or GAUC when asked for) for binary tasks, RMSE for regression. */
export function taskMetric(
  task: Pick<TaskSpec, 'type'>,
  binary: BinaryGateMetric = 'auc',
): { metric: BinaryGateMetric | 'rmse'; higherIsBetter: boolean } {
  const { metric, higherIsBetter } = taskType(task);
  return { metric: metric === 'auc' ? binary : metric, higherIsBetter };
}

/** The first task's metric: what early stopping and the promotion gate watch. */
export function primaryMetric(spec: ModelSpec): {
  task: string;
  metric: BinaryGateMetric | 'rmse';
  higherIsBetter: boolean;
} {
  return { task: spec.tasks[0].name, ...taskMetric(spec.tasks[0]) };
}

/**
 * Identifies the features a spec reads (names, kinds, encodings). Cached feature vectors are keyed by it, so a model
 * with another feature schema never reads entries written for the previous one.
 */
export function featureSchemaVersion(spec: ModelSpec): string {
  const canonical = JSON.stringify(spec.features.map((f) => Object.entries(f).sort(([a], [b]) => a.localeCompare(b))));
  return sha256Hex(canonical).slice(0, 12);
}
