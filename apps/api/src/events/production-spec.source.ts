import type { ModelSpec } from '@app/mmoe';

/** The spec of the model serving production, if any: what event labels are checked against (bound by ModelsModule). */
export abstract class ProductionSpecSource {
  abstract current(): ModelSpec | undefined;
}
