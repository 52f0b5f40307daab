/**
 * A cell's value as an error message quotes it: JSON-escaped (a NUL or a line break in the file must not reach a
 * terminal or a log raw) and cut to 100 characters (a 10 MB cell is not a message).
 */
export function quoted(raw: unknown): string {
  const text = String(raw);
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

/** A value that cannot be read; `field` names its column so that a reader can point at it. */
export class RowError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'RowError';
  }
}

/** A decimal number as written in a CSV or JSON text: no hex, octal or binary prefix, no "Infinity". */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

/**
 * A number, NaN when missing (absent, empty or blank), RowError for anything else that is not a finite decimal number:
 * Number() alone read " " as 0 and "0x10" as 16.
 */
export function parseNumber(raw: unknown, field: string): number {
  if (raw === undefined || raw === null || raw === '') return NaN;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) throw new RowError(field, `${raw} is not a number`);
    return raw;
  }
  const text = String(raw).trim();
  if (text === '') return NaN;
  const value = DECIMAL.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value)) throw new RowError(field, `${quoted(raw)} is not a number`);
  return value;
}

/**
 * Largest magnitude of a number a model reads (a feature, a context value, a label, a weight): it is a float32 there,
 * whose square (a regression loss, a variance) overflows past ~1.8e19, and beyond ±3.4e38 it is infinite. 1e18 keeps
 * nanosecond-free timestamps, prices and counts. The API refuses larger ones; training reads them as unreadable (a
 * value stored before that bound would otherwise make a feature's fitted deviation infinite).
 */
export const MAX_NUMBER_MAGNITUDE = 1e18;

/**
 * Smallest positive sample weight: a weight is a float32 in training, where 1e-300 is 0 (every row of a file so
 * weighted left out of the loss, and nothing learnt, without a word).
 */
export const MIN_SAMPLE_WEIGHT = 1e-30;

/** parseNumber for what a model is trained on: RowError beyond ±MAX_NUMBER_MAGNITUDE. */
export function parseBoundedNumber(raw: unknown, field: string): number {
  const value = parseNumber(raw, field);
  if (Math.abs(value) > MAX_NUMBER_MAGNITUDE) throw new RowError(field, `${value} is beyond ±1e18`);
  return value;
}
