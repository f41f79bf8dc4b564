import { A, GROW_AHEAD_MIN_BYTES, canGrowAhead, growAhead, wasmMemoryBytes } from "../../src/backend/automerge";

/** Writes a new value to one of `handles` (a key per handle), as a frontend does: put, commit, take the change. */
function write(handles: ReturnType<typeof A.getBackend>[], i: number): void {
  const value = new Uint8Array(200);
  value.fill(i & 255);
  value[0] = i >> 8;
  const d = handles[i % handles.length];
  d.put("_root", `key/${i % handles.length}`, value);
  d.commit();
  d.getLastLocalChange();
}

describe("Automerge's memory, grown ahead", () => {
  test("the WebAssembly instance is taken as the package loads", () => {
    expect(canGrowAhead()).toBe(true);
    expect(wasmMemoryBytes()).toBeGreaterThan(0);
  });

  test("after a growth it is grown once, by at least GROW_AHEAD_MIN_BYTES, and later writes are served from that block", () => {
    const template = A.getBackend(A.init());
    const handles = Array.from({ length: 500 }, () => template.clone("ab".repeat(16)));
    let i = 0;
    const start = wasmMemoryBytes();
    // Until Automerge's allocator grows the memory itself (a few hundred writes; bounded, so a memory that never grows fails here).
    while (wasmMemoryBytes() === start && i < 100_000) write(handles, i++);
    const grown = wasmMemoryBytes();
    expect(grown).toBeGreaterThan(start);
    growAhead();
    const ahead = wasmMemoryBytes();
    expect(ahead - grown).toBeGreaterThanOrEqual(GROW_AHEAD_MIN_BYTES);

    // About 6.5 MB of Automerge allocations (measured: ~650 B per write; without growAhead the
    // memory grows 64 KiB at a time, about 100 times), less than the block: freed to the
    // allocator, it must serve them all, or the memory grows again.
    const sizes = new Set<number>();
    for (let n = 0; n < 10_000; n++) {
      write(handles, i++);
      growAhead();
      sizes.add(wasmMemoryBytes());
    }
    expect([...sizes]).toEqual([ahead]);
    for (const h of handles) h.free();
  });

  test("a call when the memory has not grown does nothing", () => {
    const before = wasmMemoryBytes();
    growAhead();
    growAhead();
    expect(wasmMemoryBytes()).toBe(before);
  });
});
