import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';

import { invalidUtf8At } from '@app/mmoe/serving';

/**
 * Deepest nesting of arrays and objects a JSON body may have. The deepest DTO (events → event → context) needs 3;
 * a model spec in a training job a few more. Validation and transformation recurse once per level, so a body nested
 * thousands of levels deep would otherwise end in a stack overflow (a 500) long after parsing succeeded.
 */
export const MAX_JSON_DEPTH = 32;

/** A client error of the content-type parser (400, 415), answered like Fastify's own body errors (error.filter.ts). */
class BodyError extends Error {
  constructor(
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
  }
}

/** The charset a content type declares (`application/json; charset="UTF-16"` → `utf-16`), lower-cased. */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/**
 * Why a body declared with `contentType` cannot be read as UTF-8 JSON, or undefined: the parser reads bytes as UTF-8
 * whatever is declared, so a UTF-16 body would be read as garbage rather than refused.
 */
export function charsetProblem(contentType: string | undefined): string | undefined {
  const charset = CHARSET.exec(contentType ?? '')?.[1].toLowerCase();
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8') return undefined;
  return `body charset "${charset}" is not supported: send UTF-8 JSON (charset=utf-8 or none)`;
}

/**
 * Why a body sent with `encoding` (its Content-Encoding) cannot be read, or undefined: none is decoded, so a gzipped
 * body was refused as "not valid UTF-8 (at byte 1)" and a body only labelled gzip was read as it was.
 */
export function encodingProblem(encoding: string | string[] | undefined): string | undefined {
  if (encoding === undefined || (typeof encoding === 'string' && /^\s*identity\s*$/i.test(encoding))) return undefined;
  return `body content-encoding "${String(encoding)}" is not supported: send the JSON as it is`;
}

/**
 * The only body parser of the API: UTF-8 JSON, nesting bounded before parsing, and an empty body read as no body, so
 * that a client sending `content-type: application/json` on a bodyless POST (rollback, pause …) is not refused. Any
 * other content type, another charset or a content encoding, is a 415: the default text/plain parser would hand a string to validation,
 * which then reports every field as missing.
 */
export function installJsonBodyParser(fastify: FastifyInstance): void {
  // Keeps Fastify's protection against `__proto__` / `constructor.prototype` keys.
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeAllContentTypeParsers();
  // As bytes, not Fastify's string: that one decodes with U+FFFD for bytes that are not UTF-8, then refuses the body
  // as "did not match Content-Length" when the lengths differ, and passes it silently changed when they happen not to
  // (a 4-byte character cut to 3: an id the client never sent).
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const unreadable =
      charsetProblem(request.headers['content-type']) ?? encodingProblem(request.headers['content-encoding']);
    if (unreadable) return done(new BodyError(unreadable, 415), undefined);
    const bytes = body as Buffer;
    if (!isUtf8(bytes))
      return done(new BodyError(`body is not valid UTF-8 (at byte ${invalidUtf8At(bytes)})`), undefined);
    const text = bytes.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    const tooDeep = depthExceededAt(text, MAX_JSON_DEPTH);
    if (tooDeep >= 0)
      return done(
        new BodyError(`body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels (at character ${tooDeep})`),
        undefined,
      );
    parseJson(request, text, (error, value) => {
      // Fastify's parser calls a forbidden key invalid JSON, which sends a client looking for a syntax error.
      if (error && FORBIDDEN_KEY.test(text))
        return done(new BodyError('body must not use __proto__ or constructor.prototype as keys'), undefined);
      done(error, value);
    });
  });
}

/** A key the JSON parser refuses (prototype pollution), as it appears in the text. */
const FORBIDDEN_KEY = /"__proto__"\s*:|"constructor"\s*:\s*\{[^{}]*"prototype"\s*:/;

/**
 * Where `text` first opens a level deeper than `max`, or -1: one pass over the characters, brackets inside strings
 * ignored. Malformed JSON is left to the parser.
 */
export function depthExceededAt(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return i;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return -1;
}
