import { ModelSpec } from '../model-spec/model-spec.schema';

/** Which experts exist and which gate (if any) mixes them for which tasks: the four architectures as data. */
export interface Topology {
  expertCount: number;
  expertUnits: number[];
  /** Empty for shared-bottom: its single expert feeds every tower directly. */
  gates: { experts: number[]; tasks: number[] }[];
}

const range = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);

export function topologyOf(spec: ModelSpec): Topology {
  const { architecture, experts, expertUnits, taskExperts, bottomUnits } = spec.model;
  const tasks = spec.tasks.length;
  switch (architecture) {
    case 'shared-bottom':
      return { expertCount: 1, expertUnits: bottomUnits ?? expertUnits, gates: [] };
    case 'omoe':
      return { expertCount: experts, expertUnits, gates: [{ experts: range(0, experts), tasks: range(0, tasks) }] };
    case 'mmoe':
      return {
        expertCount: experts,
        expertUnits,
        gates: range(0, tasks).map((t) => ({ experts: range(0, experts), tasks: [t] })),
      };
    case 'ple':
      // CGC: experts 0..experts-1 are shared, then each task owns `taskExperts` of its own.
      return {
        expertCount: experts + tasks * taskExperts,
        expertUnits,
        gates: range(0, tasks).map((t) => ({
          experts: [...range(0, experts), ...range(experts + t * taskExperts, taskExperts)],
          tasks: [t],
        })),
      };
  }
}

/** The gate that mixes the experts for a task, or undefined (shared-bottom). */
export function gateOfTask(topology: Topology, task: number): number | undefined {
  const index = topology.gates.findIndex((g) => g.tasks.includes(task));
  return index < 0 ? undefined : index;
}
