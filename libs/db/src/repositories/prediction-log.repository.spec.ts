import { PredictionCopyText } from './prediction-log.repository';

describe('PredictionCopyText', () => {
  const served = {
    loggedAt: new Date('2026-12-05T10:00:00.000Z'),
    requestId: 'r\t1',
    userId: 'ü\\ser',
    versionId: 7,
    role: 'canary' as const,
    itemIds: ['a', 'b\nc', '日本'],
    scores: [Float32Array.of(0.1, 1, -2.5e-8), Float32Array.of(0, 0.5, 3)],
  };

  it('writes a COPY text line per item: fields escaped, scores as a real[] of their shortest forms', () => {
    const text = new PredictionCopyText();
    text.append(served);
    const at = '2026-12-05T10:00:00.000Z\tr\\t1';
    const user = 'ü\\\\ser\t7\tcanary';
    expect(text.contents().toString()).toBe(
      `${at}\ta\t${user}\t{0.1,0}\n` + `${at}\tb\\nc\t${user}\t{1,0.5}\n` + `${at}\t日本\t${user}\t{-2.5e-8,3}\n`,
    );
  });

  it('grows past its first buffer without losing a line, and starts over on clear()', () => {
    const text = new PredictionCopyText();
    const itemIds = Array.from({ length: 2000 }, (_, i) => `item-${i}-${'x'.repeat(i % 50)}`);
    text.append({ ...served, itemIds, scores: [new Float32Array(2000).fill(0.25)] });
    const lines = text.contents().toString().split('\n');
    expect(lines).toHaveLength(2001);
    expect(lines.slice(0, -1).map((line) => line.split('\t')[2])).toEqual(itemIds);
    expect(lines[1999]).toMatch(/\t\{0\.25\}$/);
    text.clear();
    expect(text.contents()).toHaveLength(0);
  });
});
