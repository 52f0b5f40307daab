import { parseModelSpec } from '@app/mmoe';

import { predictionHeader } from './prediction-header.rules';

const tasksOf = (...names: string[]) =>
  parseModelSpec({
    features: [{ name: 'f', type: 'numeric' }],
    tasks: names.map((name) => ({ name, label: name, type: 'binary' as const })),
    model: { expertUnits: [4] },
  }).tasks;

describe('predictionHeader', () => {
  it('writes the line, the id column when asked for, then each task', () => {
    expect(predictionHeader(tasksOf('click', 'like'))).toEqual(['line', 'click', 'like']);
    expect(predictionHeader(tasksOf('click'), 'user')).toEqual(['line', 'user', 'click']);
  });

  it('names the line column apart when a task or the id column is named line', () => {
    expect(predictionHeader(tasksOf('line', 'click'))).toEqual(['_line', 'line', 'click']);
    expect(predictionHeader(tasksOf('line', '_line'))).toEqual(['__line', 'line', '_line']);
    expect(predictionHeader(tasksOf('click'), 'line')).toEqual(['_line', 'line', 'click']);
  });

  it("refuses an id column named like a score's column", () => {
    expect(() => predictionHeader(tasksOf('click'), 'click')).toThrow(
      '--id-column click: the output already has a column of that name',
    );
  });
});
