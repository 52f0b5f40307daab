import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import {
  checkWasmUsable,
  guardWasmAllocations,
  noteWasmFailure,
  WASM_HEAP_MAX_BYTES,
  WASM_RESERVED_BYTES,
  WasmAbortedError,
  WasmMemoryError,
} from './wasm.guard';

/** WebAssembly.RuntimeError, which the project's lib typings leave out. */
const { RuntimeError } = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly;

/** An emscripten module's allocator as tfjs-wasm sees it: `_malloc` replaces itself with the export on first call. */
function fakeModule(offsets: number[]) {
  const freed: number[] = [];
  const exported = () => offsets.shift() ?? 0;
  const module = {
    HEAPU8: new Uint8Array(16),
    _free: (offset: number) => freed.push(offset),
    _malloc(bytes: number): number {
      module._malloc = exported;
      return module._malloc(bytes);
    },
  };
  return { backend: { wasm: module } as unknown as BackendWasm, module, freed };
}

describe('guardWasmAllocations', () => {
  it('refuses, before anything is written, a tensor the heap cannot hold (malloc returned 0, not an error)', () => {
    const { backend, module } = fakeModule([8, 1024, 0]);
    guardWasmAllocations(backend);
    expect(module._malloc(64)).toBe(1024);
    expect(() => module._malloc(400_000_000)).toThrow(WasmMemoryError);
    expect(() => module._malloc(400_000_000)).toThrow(/a tensor of 0\.37 GiB does not fit in the wasm memory/);
  });

  it("keeps the heap's top for the module's own allocations, and frees what it refuses", () => {
    const top = WASM_HEAP_MAX_BYTES - WASM_RESERVED_BYTES;
    // Past 2 GiB emscripten's malloc returns a negative int32.
    const high = (top - 1000) | 0;
    const { backend, module, freed } = fakeModule([8, high, high]);
    guardWasmAllocations(backend);
    expect(module._malloc(1000)).toBe(high);
    expect(() => module._malloc(1001)).toThrow(WasmMemoryError);
    expect(freed).toEqual([8, high]);
  });
});

describe('noteWasmFailure', () => {
  it('turns a trap into a WasmAbortedError that every later training meets at once; other errors pass', () => {
    const other = new Error('progress store unavailable');
    expect(noteWasmFailure(other)).toBe(other);
    expect(() => checkWasmUsable()).not.toThrow();
    const noted = noteWasmFailure(new RuntimeError('memory access out of bounds'));
    expect(noted).toBeInstanceOf(WasmAbortedError);
    expect((noted as Error).message).toMatch(/tfjs-wasm aborted \(memory access out of bounds\).*must restart/);
    expect(() => checkWasmUsable()).toThrow(noted as Error);
  });
});
