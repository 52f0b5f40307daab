import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** What one tfjs-wasm instance (one per thread) can address: emscripten's heap maximum, 4 GiB less a page. */
export const WASM_HEAP_MAX_BYTES = 4_294_901_760;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/**
 * An allocation the wasm memory could not hold. Nothing was written: the instance is as it was, and goes on serving
 * once the tensors of the failed work are released.
 */
export class WasmMemoryError extends Error {
  override readonly name = 'WasmMemoryError';
}

/**
 * The wasm module trapped or aborted (a C++ allocation that failed, an access out of bounds). Its stack and heap stay
 * as the trap left them: every later call fails ("memory access out of bounds") or may never return, so the process
 * must restart before it trains or scores again on wasm.
 */
export class WasmAbortedError extends Error {
  override readonly name = 'WasmAbortedError';
}

let aborted: WasmAbortedError | undefined;

/**
 * The top of the wasm memory that tensors may not take: what the module's C++ allocates for itself (its tensor
 * registry, XNNPACK's packed weights and workspaces) must still find room, for it aborts or traps where it finds none.
 */
export const WASM_RESERVED_BYTES = 256 * 2 ** 20;

/**
 * Makes a tensor allocation that the wasm memory cannot hold a WasmMemoryError, thrown before anything is written.
 * tfjs-wasm takes the offset emscripten's malloc returns as is: when the heap cannot grow that is 0, and the tensor was
 * written over the module's own data at address 0; a tensor that took the heap's last bytes made the module's own next
 * allocation trap ("memory access out of bounds", measured). Either way the instance was lost, far from the cause.
 */
export function guardWasmAllocations(backend: BackendWasm): void {
  // Emscripten's own members, which tfjs's typing of the module leaves out.
  const wasm = backend.wasm as unknown as {
    _malloc(bytes: number): number;
    _free(offset: number): void;
    HEAPU8: Uint8Array;
  };
  // Emscripten's _malloc replaces itself with the module's export on its first call: make that call before wrapping
  // it, or the wrapper would be replaced too.
  wasm._free(wasm._malloc(1));
  const malloc = wasm._malloc.bind(wasm);
  wasm._malloc = (bytes: number) => {
    const offset = malloc(bytes);
    // Offsets past 2 GiB come back negative (an int32).
    if (bytes > 0 && (offset === 0 || (offset >>> 0) + bytes > WASM_HEAP_MAX_BYTES - WASM_RESERVED_BYTES)) {
      if (offset !== 0) wasm._free(offset);
      throw new WasmMemoryError(
        `a tensor of ${gib(bytes)} does not fit in the wasm memory (${gib(wasm.HEAPU8.length)} now, of which ` +
          `tensors may take ${gib(WASM_HEAP_MAX_BYTES - WASM_RESERVED_BYTES)} in one thread)`,
      );
    }
    return offset;
  };
}

/** Whether an error is the wasm module's own trap or abort() (WebAssembly.RuntimeError, of whichever realm). */
export function isWasmTrap(error: unknown): boolean {
  return error instanceof Error && error.name === 'RuntimeError';
}

/** What a wasm failure means, for the message of an error that reports it. */
export function describeWasmFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!isWasmTrap(error)) return message;
  return `tfjs-wasm aborted (${message}), most often because its memory (at most ${gib(WASM_HEAP_MAX_BYTES)} per thread) was exhausted`;
}

/**
 * Notes a trap of this thread's wasm instance and returns the error to report: a WasmAbortedError saying the process
 * must restart, or `error` itself when it was no trap.
 */
export function noteWasmFailure(error: unknown): unknown {
  if (!isWasmTrap(error)) return error;
  aborted ??= new WasmAbortedError(
    `${describeWasmFailure(error)}; this process cannot use wasm any more and must restart`,
    { cause: error },
  );
  return aborted;
}

/** The trap that left this thread's wasm instance unusable, if one did. */
export function wasmAborted(): WasmAbortedError | undefined {
  return aborted;
}

/** Before work on wasm: fails at once, with the cause, on an instance a trap left unusable. */
export function checkWasmUsable(): void {
  if (aborted) throw aborted;
}
