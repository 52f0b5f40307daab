import { ModelSpec } from '../model-spec/model-spec.schema';

/**
 * Which experts exist, what each expert and gate reads, and which gate (if any) mixes which experts for which
 * tasks: the architectures as data. Gates are listed level by level, so every gate's source comes before it.
 */
export interface Topology {
  expertUnits: number[];
  /** Per expert, the gate whose fused output it reads (an earlier level's); undefined: the input row. */
  experts: { input?: number }[];
  /**
   * Empty for shared-bottom: its single expert feeds every tower directly. `tasks` are the towers a gate feeds
   * (none for a PLE level's shared gate, which feeds the next level only).
   */
  gates: { experts: number[]; tasks: number[]; input?: number }[];
}

const range = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);
const fromInput = (count: number) => Array.from({ length: count }, () => ({}));

export function topologyOf(spec: ModelSpec): Topology {
  const { architecture, experts, expertUnits, bottomUnits } = spec.model;
  const tasks = spec.tasks.length;
  switch (architecture) {
    case 'shared-bottom':
      return { expertUnits: bottomUnits ?? expertUnits, experts: fromInput(1), gates: [] };
    case 'omoe':
      return {
        expertUnits,
        experts: fromInput(experts),
        gates: [{ experts: range(0, experts), tasks: range(0, tasks) }],
      };
    case 'mmoe':
      return {
        expertUnits,
        experts: fromInput(experts),
        gates: range(0, tasks).map((t) => ({ experts: range(0, experts), tasks: [t] })),
      };
    case 'cgc':
    case 'ple':
      return pleTopology(spec);
  }
}

/**
 * PLE (Tang et al. 2020), one CGC per level. A level has `experts` shared experts, then `taskExperts` per task; task
 * t's gate mixes its own and the shared ones. Every level but the last also has a shared gate over all its experts.
 * Level 1 reads the input row; at the next level, task t's experts and gate read task t's gate output, the shared
 * experts the shared gate's. The last level's task gates feed the towers.
 */
function pleTopology(spec: ModelSpec): Topology {
  const { experts: shared, expertUnits, taskExperts, levels = 1 } = spec.model;
  const tasks = spec.tasks.length;
  const perLevel = shared + tasks * taskExperts;
  const topology: Topology = { expertUnits, experts: [], gates: [] };
  // The previous level's task gates and shared gate (undefined at level 1: the input row).
  let taskInputs: (number | undefined)[] = range(0, tasks).map(() => undefined);
  let sharedInput: number | undefined;
  for (let level = 0; level < levels; level++) {
    const first = level * perLevel;
    for (let e = 0; e < shared; e++) topology.experts.push({ input: sharedInput });
    for (let t = 0; t < tasks; t++)
      for (let e = 0; e < taskExperts; e++) topology.experts.push({ input: taskInputs[t] });
    const last = level === levels - 1;
    const gates = range(0, tasks).map((t) => ({
      experts: [...range(first, shared), ...range(first + shared + t * taskExperts, taskExperts)],
      tasks: last ? [t] : [],
      input: taskInputs[t],
    }));
    taskInputs = gates.map((_, t) => topology.gates.length + t);
    topology.gates.push(...gates);
    if (!last) {
      topology.gates.push({ experts: range(first, perLevel), tasks: [], input: sharedInput });
      sharedInput = topology.gates.length - 1;
    }
  }
  return topology;
}

/** The gate that mixes the experts for a task, or undefined (shared-bottom). */
export function gateOfTask(topology: Topology, task: number): number | undefined {
  const index = topology.gates.findIndex((g) => g.tasks.includes(task));
  return index < 0 ? undefined : index;
}

/**
 * Runs a topology over any kind of value (tfjs tensors, ONNX graph names): each expert is computed once, on first
 * use, from its source; each gate fuses its experts. Returns each gate's fused output.
 */
export function fuseTopology<T>(
  topology: Topology,
  x: T,
  expert: (e: number, input: T) => T,
  fuse: (g: number, input: T, experts: T[]) => T,
): T[] {
  const fused: T[] = [];
  const outputs = new Map<number, T>();
  const source = (gate: number | undefined) => (gate === undefined ? x : fused[gate]);
  const expertOutput = (e: number) => {
    if (!outputs.has(e)) outputs.set(e, expert(e, source(topology.experts[e].input)));
    return outputs.get(e)!;
  };
  topology.gates.forEach((g, i) => fused.push(fuse(i, source(g.input), g.experts.map(expertOutput))));
  return fused;
}
