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

/** A number, NaN when missing (absent or empty), RowError for anything else that is not a finite number. */
export function parseNumber(raw: unknown, field: string): number {
  if (raw === undefined || raw === null || raw === '') return NaN;
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isFinite(value)) throw new RowError(field, `"${String(raw)}" is not a number`);
  return value;
}
