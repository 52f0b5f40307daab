import {
  conditionalTasks,
  fillJointLabels,
  impossibleJointLabel,
  labelledRows,
  parentFirst,
  parentTasks,
} from './task-space.rules';

const tasks = [
  { name: 'buy', conditionalOn: 'cart' },
  { name: 'click' },
  { name: 'cart', conditionalOn: 'click' },
  { name: 'cvr', sampleSpace: 'click' },
];

describe('task spaces', () => {
  it('orders parents before their conditional tasks, and lists the conditional ones in spec order', () => {
    expect(parentTasks(tasks)).toEqual([2, -1, 1, -1]);
    expect(parentFirst(tasks)).toEqual([1, 2, 0, 3]);
    expect(conditionalTasks(tasks)).toEqual([0, 2]);
  });

  it('fills a missing joint label with 0 only where the parent did not happen (along a chain)', () => {
    const labels = [NaN, 0, NaN, NaN];
    fillJointLabels(parentFirst(tasks), parentTasks(tasks), labels);
    expect(labels).toEqual([0, 0, 0, NaN]);
    const clicked = [NaN, 1, NaN, NaN];
    fillJointLabels(parentFirst(tasks), parentTasks(tasks), clicked);
    expect(clicked).toEqual([NaN, 1, NaN, NaN]);
  });

  it('finds a joint label of 1 whose parent did not happen, along a chain once filled', () => {
    const parents = parentTasks(tasks);
    expect(impossibleJointLabel(parents, [1, 1, 1, 0])).toBe(-1);
    expect(impossibleJointLabel(parents, [NaN, 0, 1, NaN])).toBe(2); // a cart without its click
    const skipped = [1, 0, NaN, NaN]; // a buy whose cart is missing but whose click is 0
    fillJointLabels(parentFirst(tasks), parents, skipped);
    expect(impossibleJointLabel(parents, skipped)).toBe(0);
    expect(impossibleJointLabel(parents, [NaN, NaN, 1, 1])).toBe(-1); // sampleSpace is no parent
  });

  it('keeps the labelled rows inside a sample space', () => {
    const labels = [Float32Array.of(1, 0, NaN, 1), Float32Array.of(0, 1, 1, NaN)];
    expect(Array.from(labelledRows(labels, 1))).toEqual([1, 1, 1, 0]);
    expect(Array.from(labelledRows(labels, 1, 0))).toEqual([1, 0, 0, 0]);
  });
});
