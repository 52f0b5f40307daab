import { parseModelSpec } from '@app/mmoe';

import { labelErrors } from './labels.validator';

const { tasks } = parseModelSpec({
  features: [{ name: 'x', type: 'numeric' }],
  tasks: [
    { name: 'click', label: 'clicked', type: 'binary' },
    { name: 'dwell', label: 'dwell_seconds', type: 'regression' },
  ],
  model: { expertUnits: [4] },
});

describe('labelErrors', () => {
  it('accepts any subset of the tasks, binary labels 0 or 1 and any finite regression label', () => {
    expect(
      labelErrors(tasks, [{ labels: { click: 1, dwell: -3.5 } }, { labels: { click: 0 } }, { labels: { dwell: 1e6 } }]),
    ).toEqual([]);
  });

  it('names each bad label by its path', () => {
    expect(
      labelErrors(tasks, [{ labels: { click: 1 } }, { labels: { clicked: 1, click: 2 } }, { labels: {} }]),
    ).toEqual([
      {
        field: 'events.1.labels.clicked',
        message: 'events.1.labels.clicked is not a task of the production model (click, dwell)',
      },
      { field: 'events.1.labels.click', message: 'events.1.labels.click must be 0 or 1 (binary task), got 2' },
      { field: 'events.2.labels', message: 'events.2.labels must name at least one task (click, dwell)' },
    ]);
  });

  it('refuses a funnel step of 1 whose parent is 0, as training would skip the row', () => {
    const funnel = parseModelSpec({
      features: [{ name: 'x', type: 'numeric' }],
      tasks: [
        { name: 'click', label: 'click', type: 'binary' },
        { name: 'cart', label: 'cart', type: 'binary', conditionalOn: 'click' },
        { name: 'buy', label: 'buy', type: 'binary', conditionalOn: 'cart' },
      ],
      model: { expertUnits: [4] },
    }).tasks;
    expect(labelErrors(funnel, [{ labels: { click: 1, buy: 1 } }, { labels: { buy: 1 } }])).toEqual([]);
    expect(labelErrors(funnel, [{ labels: { click: 0, cart: 1 } }, { labels: { click: 0, buy: 1 } }])).toEqual([
      {
        field: 'events.0.labels.cart',
        message: 'events.0.labels.cart is 1 where click is 0: cart cannot happen without click',
      },
      {
        field: 'events.1.labels.buy',
        message: 'events.1.labels.buy is 1 where cart is 0: buy cannot happen without cart',
      },
    ]);
  });
});
