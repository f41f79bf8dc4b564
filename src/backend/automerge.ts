/**
 * Automerge, loaded so that its WebAssembly memory can be grown ahead of use.
 *
 * Why: node 20's V8 counts every growth of a WebAssembly memory as new
 * external memory the size of the whole memory. Automerge's allocator grows
 * its memory 64 KiB at a time, as it needs it, and a frontend's memory only
 * grows (documents keep their history). Past a few tens of MiB each growth
 * set off young-generation collections ("external memory pressure"), and
 * then full mark-compacts as well: a frontend spent up to half its time
 * collecting, and 64 clients' puts to 10,000 keys fell from about 2,500/s
 * to 700/s after a minute (docs/benchmarks.md, "Session 9"). None of the V8
 * flags tried changed it. So after Automerge work, `growAhead` sees whether
 * the memory grew, and if it did, allocates a block of half its size inside
 * the instance and frees it at once: the allocator keeps the freed block
 * and serves later allocations from it, so the memory grows a few times in
 * all instead of once per 64 KiB. The block is never written, so its pages
 * cost no resident memory.
 *
 * The instance is taken as Automerge creates it (`WebAssembly.Instance`,
 * wrapped while the package loads); this module must be the first to load
 * the package in a thread, which it is in the server (every use goes
 * through here). If it is not, `growAhead` does nothing.
 */
import type * as AutomergeModule from "@automerge/automerge";

/** The parts of the WebAssembly API used here (node's types do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  Instance: new (...args: unknown[]) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
}
interface AllocatorExports {
  memory: WasmMemory;
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
}

const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
let captured: WasmInstance | undefined;
const Instance = wasm.Instance;
wasm.Instance = new Proxy(Instance, {
  construct(target, args, newTarget) {
    const instance = Reflect.construct(target, args, newTarget) as WasmInstance;
    captured ??= instance;
    return instance;
  },
});
let loaded: typeof AutomergeModule;
try {
  loaded = require("@automerge/automerge");
} finally {
  wasm.Instance = Instance;
}
export const A = loaded;

/** Smallest and largest block grown ahead at once. */
export const GROW_AHEAD_MIN_BYTES = 16 << 20;
export const GROW_AHEAD_MAX_BYTES = 256 << 20;
/** No block is reserved past this size (a WebAssembly memory ends at 4 GiB). */
const GROW_AHEAD_LIMIT_BYTES = 3 * 2 ** 30;

function allocatorOf(instance: WasmInstance | undefined): AllocatorExports | null {
  const e = instance?.exports as Partial<AllocatorExports> | undefined;
  if (!e || !(e.memory instanceof wasm.Memory) || typeof e.__wbindgen_malloc !== "function" || typeof e.__wbindgen_free !== "function") return null;
  return e as AllocatorExports;
}

let allocator = allocatorOf(captured);
let seenBytes = allocator?.memory.buffer.byteLength ?? 0;

/** Bytes of Automerge's WebAssembly memory (0 if it was not captured). */
export function wasmMemoryBytes(): number {
  return allocator?.memory.buffer.byteLength ?? 0;
}

/** Whether `growAhead` can work in this thread. */
export function canGrowAhead(): boolean {
  return allocator !== null;
}

/**
 * Call after Automerge work: if the memory grew since the last call, grows
 * it by half its size (16-256 MiB) at once, for later allocations to use.
 * Cheap when it did not grow (one property read).
 */
export function growAhead(): void {
  if (!allocator) return;
  const bytes = allocator.memory.buffer.byteLength;
  if (bytes === seenBytes) return;
  const ahead = Math.min(GROW_AHEAD_MAX_BYTES, Math.max(GROW_AHEAD_MIN_BYTES, bytes >>> 1));
  if (bytes + ahead <= GROW_AHEAD_LIMIT_BYTES) {
    try {
      const ptr = allocator.__wbindgen_malloc(ahead, 1);
      allocator.__wbindgen_free(ptr, ahead, 1);
    } catch {
      allocator = null; // the allocator refused (out of memory): leave growth to Automerge from now on
      return;
    }
  }
  seenBytes = allocator.memory.buffer.byteLength;
}
