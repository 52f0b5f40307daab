import type { ModelSpec } from '@app/mmoe';

/**
 * The spec of the model serving production, if any: what event labels are checked against; and the specs of every
 * version served (production, canary, shadow): whose event-fed lists events feed. Bound by ModelsModule.
 */
export abstract class ProductionSpecSource {
  abstract current(): ModelSpec | undefined;
  abstract served(): { id: number; spec: ModelSpec }[];
  /** `listener` is called after every change of the versions this process serves. */
  abstract onChange(listener: () => void): void;
}
