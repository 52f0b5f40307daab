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
  /** Per task (spec order), what its tower reads of the other towers. */
  towers: TowerLinks[];
  /** Every task index, each after the tasks whose towers it reads (the spec's task links are a DAG). */
  towerOrder: number[];
}

/**
 * A tower's own layers (towerUnits) read its gate's fused output; then it may read other towers' representations —
 * each tower's last one, which its output layer reads too.
 */
export interface TowerLinks {
  /** AITM (dependsOn): the task whose representation an attention transfer unit mixes into this one. */
  transferFrom?: number;
  /** DBMTL (relatedTasks): the tasks whose representations relation layers read beside this one's. */
  related: number[];
}

const range = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);
const fromInput = (count: number) => Array.from({ length: count }, () => ({}));

export function topologyOf(spec: ModelSpec): Topology {
  return { ...expertsOf(spec), ...towersOf(spec) };
}

type ExpertTopology = Omit<Topology, 'towers' | 'towerOrder'>;

function expertsOf(spec: ModelSpec): ExpertTopology {
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

function towersOf(spec: ModelSpec): Pick<Topology, 'towers' | 'towerOrder'> {
  const index = (name: string) => spec.tasks.findIndex((t) => t.name === name);
  const towers = spec.tasks.map((t): TowerLinks => ({
    ...(t.dependsOn === undefined ? {} : { transferFrom: index(t.dependsOn) }),
    related: (t.relatedTasks ?? []).map(index),
  }));
  const towerOrder: number[] = [];
  const visit = (t: number) => {
    if (towerOrder.includes(t)) return;
    const { transferFrom, related } = towers[t];
    if (transferFrom !== undefined) visit(transferFrom);
    related.forEach(visit);
    towerOrder.push(t);
  };
  towers.forEach((_, t) => visit(t));
  return { towers, towerOrder };
}

/**
 * PLE (Tang et al. 2020), one CGC per level. A level has `experts` shared experts, then `taskExperts` per task; task
 * t's gate mixes its own and the shared ones. Every level but the last also has a shared gate over all its experts.
 * Level 1 reads the input row; at the next level, task t's experts and gate read task t's gate output, the shared
 * experts the shared gate's. The last level's task gates feed the towers.
 */
function pleTopology(spec: ModelSpec): ExpertTopology {
  const { experts: shared, expertUnits, taskExperts, levels = 1 } = spec.model;
  const tasks = spec.tasks.length;
  const perLevel = shared + tasks * taskExperts;
  const topology: ExpertTopology = { expertUnits, experts: [], gates: [] };
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

/** The widths of a spec's towers: their own layers' output, and a tower's last representation (its output layer's input). */
export interface TowerWidths {
  /** What a tower's own layers output (the fused output's width without towerUnits), and a transfer unit keeps. */
  own: number;
  /** Per task, the width of its last representation: the relation layers' output for a task with relatedTasks. */
  representation: number[];
}

export function towerWidths(spec: ModelSpec, topology: Topology): TowerWidths {
  const { towerUnits, relationUnits } = spec.model;
  const own = towerUnits.length > 0 ? towerUnits[towerUnits.length - 1] : topology.expertUnits.at(-1)!;
  const related = relationUnits?.at(-1) ?? own;
  return { own, representation: topology.towers.map((t) => (t.related.length > 0 ? related : own)) };
}

/** The relation layers' widths of a task with relatedTasks: input (its own and the related representations), then relationUnits. */
export function relationLayers(spec: ModelSpec, topology: Topology, task: number): number[] {
  const widths = towerWidths(spec, topology);
  const input = topology.towers[task].related.reduce((w, r) => w + widths.representation[r], widths.own);
  return [input, ...(spec.model.relationUnits ?? [widths.own])];
}

/**
 * Runs the towers over any kind of value (tfjs tensors, ONNX graph names), in towerOrder: each task's own layers
 * (`own`), then its attention transfer from the representation of the task it depends on (AITM), then its relation
 * layers over its own and the related tasks' representations (DBMTL). Returns each task's last representation, in
 * spec order.
 */
export function runTowers<T>(
  topology: Topology,
  steps: {
    own: (task: number) => T;
    transfer: (task: number, own: T, from: T) => T;
    relate: (task: number, own: T, related: T[]) => T;
  },
): T[] {
  const representation: T[] = [];
  for (const t of topology.towerOrder) {
    const { transferFrom, related } = topology.towers[t];
    let h = steps.own(t);
    if (transferFrom !== undefined) h = steps.transfer(t, h, representation[transferFrom]);
    if (related.length > 0)
      h = steps.relate(
        t,
        h,
        related.map((r) => representation[r]),
      );
    representation[t] = h;
  }
  return representation;
}

/**
 * The experts whose output more than one task's gate mixes (shared-bottom's one expert, which every tower reads):
 * the last shared layer is theirs.
 */
export function sharedExperts(topology: Topology): number[] {
  if (topology.gates.length === 0) return [0];
  return topology.experts.flatMap((_, e) => {
    const tasks = topology.gates.reduce((n, g) => n + (g.experts.includes(e) ? g.tasks.length : 0), 0);
    return tasks > 1 ? [e] : [];
  });
}
