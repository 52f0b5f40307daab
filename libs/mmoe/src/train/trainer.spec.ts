import { initBackend } from '../backend/backend';
import { WasmAbortedError } from '../backend/wasm.guard';
import { RawTable } from '../data/raw-table';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';

/** WebAssembly.RuntimeError, which the project's lib typings leave out. */
const { RuntimeError } = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly;

beforeAll(() => initBackend('wasm'));

const spec = parseModelSpec({
  features: [
    { name: 'age', type: 'numeric' },
    { name: 'item', type: 'categorical' },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'like', label: 'like', type: 'binary' },
  ],
  model: { experts: 2, expertUnits: [8] },
  training: { epochs: 1, batchSize: 64 },
});
const table = new RawTable(spec);
for (let i = 0; i < 1000; i++) table.add({ age: i, item: `i${i % 3}`, click: i % 2, like: (i >> 1) % 2 });

describe('a wasm trap during training', () => {
  it('fails the run saying the process must restart, and every later run at once, before it touches wasm', async () => {
    // What tfjs-wasm throws when its module aborts or traps (an exhausted heap): its instance is unusable after.
    const trap = () => {
      throw new RuntimeError('memory access out of bounds');
    };
    await expect(MultiTaskModel.train(spec, table, undefined, { threads: 1, onProgress: trap })).rejects.toThrow(
      /tfjs-wasm aborted \(memory access out of bounds\).*must restart/,
    );
    const again = MultiTaskModel.train(spec, table, undefined, { threads: 1 });
    await expect(again).rejects.toBeInstanceOf(WasmAbortedError);
  }, 60_000);
});
