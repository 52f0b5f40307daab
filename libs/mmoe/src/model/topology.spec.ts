import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import {
  fuseTopology,
  gateOfTask,
  relationLayers,
  runTowers,
  sharedExperts,
  topologyOf,
  towerWidths,
} from './topology';

const specOf = (model: Partial<ModelSpecInput['model']>) =>
  parseModelSpec({
    features: [{ name: 'x', type: 'numeric' }],
    tasks: [
      { name: 'a', label: 'ya', type: 'binary' },
      { name: 'b', label: 'yb', type: 'binary' },
    ],
    model: { expertUnits: [4], ...model },
  });

describe('topology', () => {
  it('cgc and one-level ple: shared experts first, then each task its own, every gate on the input row', () => {
    for (const architecture of ['cgc', 'ple'] as const) {
      expect(topologyOf(specOf({ architecture, experts: 2, taskExperts: 1 }))).toEqual({
        expertUnits: [4],
        experts: [{}, {}, {}, {}],
        gates: [
          { experts: [0, 1, 2], tasks: [0], input: undefined },
          { experts: [0, 1, 3], tasks: [1], input: undefined },
        ],
        towers: [{ related: [] }, { related: [] }],
        towerOrder: [0, 1],
      });
    }
  });

  it('two-level ple: a shared gate over all of level 1 feeds the shared experts of level 2, task gates their tasks', () => {
    const topology = topologyOf(specOf({ architecture: 'ple', levels: 2, experts: 1, taskExperts: 1 }));
    expect(topology.experts).toEqual([
      { input: undefined }, // level 1: shared, a's, b's, all on the input row
      { input: undefined },
      { input: undefined },
      { input: 2 }, // level 2: shared on the shared gate, a's on a's gate, b's on b's gate
      { input: 0 },
      { input: 1 },
    ]);
    expect(topology.gates).toEqual([
      { experts: [0, 1], tasks: [], input: undefined },
      { experts: [0, 2], tasks: [], input: undefined },
      { experts: [0, 1, 2], tasks: [], input: undefined },
      { experts: [3, 4], tasks: [0], input: 0 },
      { experts: [3, 5], tasks: [1], input: 1 },
    ]);
    // The towers (and the gate reports) read the last level's task gates.
    expect([gateOfTask(topology, 0), gateOfTask(topology, 1)]).toEqual([3, 4]);
  });

  it('runs every expert once, on the output of the gate it reads', () => {
    const topology = topologyOf(specOf({ architecture: 'ple', levels: 2, experts: 1, taskExperts: 1 }));
    const calls: number[] = [];
    const fused = fuseTopology(
      topology,
      'x',
      (e, input) => {
        calls.push(e);
        return `e${e}(${input})`;
      },
      (g, input, experts) => `g${g}[${input}](${experts.join(', ')})`,
    );
    expect(calls).toEqual([0, 1, 2, 3, 4, 5]);
    expect(fused[3]).toBe('g3[g0[x](e0(x), e1(x))](e3(g2[x](e0(x), e1(x), e2(x))), e4(g0[x](e0(x), e1(x))))');
  });

  it('runs each tower after those it reads: AITM transfer first, then DBMTL relations', () => {
    const spec = parseModelSpec({
      features: [{ name: 'x', type: 'numeric' }],
      tasks: [
        { name: 'buy', label: 'yb', type: 'binary', dependsOn: 'cart', relatedTasks: ['watch'] },
        { name: 'watch', label: 'yw', type: 'regression', relatedTasks: ['click'] },
        { name: 'cart', label: 'yc', type: 'binary', dependsOn: 'click' },
        { name: 'click', label: 'yk', type: 'binary' },
      ],
      model: { expertUnits: [4], towerUnits: [6], relationUnits: [5, 3] },
    });
    const topology = topologyOf(spec);
    expect(topology.towers).toEqual([
      { transferFrom: 2, related: [1] },
      { related: [3] },
      { transferFrom: 3, related: [] },
      { related: [] },
    ]);
    const representation = runTowers(topology, {
      own: (t) => `h${t}`,
      transfer: (t, own, from) => `ait${t}(${own}, ${from})`,
      relate: (t, own, related) => `rel${t}(${[own, ...related].join(', ')})`,
    });
    expect(representation[0]).toBe('rel0(ait0(h0, ait2(h2, h3)), rel1(h1, h3))');
    expect(topology.towerOrder.indexOf(3)).toBeLessThan(topology.towerOrder.indexOf(2));
    // A transfer keeps the tower's width; relation layers end at relationUnits' last.
    expect(towerWidths(spec, topology)).toEqual({ own: 6, representation: [3, 3, 6, 6] });
    expect(relationLayers(spec, topology, 0)).toEqual([6 + 3, 5, 3]);
  });

  it('finds the shared experts: every one under mmoe and omoe, the last level’s shared ones under ple, the bottom', () => {
    expect(sharedExperts(topologyOf(specOf({ architecture: 'mmoe', experts: 3 })))).toEqual([0, 1, 2]);
    expect(sharedExperts(topologyOf(specOf({ architecture: 'omoe', experts: 2 })))).toEqual([0, 1]);
    expect(sharedExperts(topologyOf(specOf({ architecture: 'ple', levels: 2, experts: 2, taskExperts: 1 })))).toEqual([
      4, 5,
    ]);
    expect(sharedExperts(topologyOf(specOf({ architecture: 'shared-bottom' })))).toEqual([0]);
  });
});
