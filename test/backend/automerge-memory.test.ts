import { A, GROW_AHEAD_MIN_BYTES, canGrowAhead, growAhead, wasmMemoryBytes } from "../../src/backend/automerge";
import { BucketSet } from "../../src/backend/buckets";
import { ActorId, keyToString } from "../../src/persist/encoding";

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

  test("one change over thousands of documents grows the memory a few times, not 64 KiB at a time", () => {
    const set = new BucketSet("cd".repeat(16) as ActorId);
    const value = new Uint8Array(1024);
    // About 6,000 documents written in one change, as a big DeleteRange or Txn does before its commit.
    const sizes = new Set<number>([wasmMemoryBytes()]);
    for (let i = 0; i < 12_000; i++) {
      set.put(keyToString(Buffer.from(`many/${i}`)), value);
      sizes.add(wasmMemoryBytes());
    }
    const changes = set.commit();
    expect(changes.length).toBeGreaterThan(5_000);
    // Measured: 1,370 sizes when only the commit grew the memory ahead; each growth sets off V8's collector.
    expect(sizes.size).toBeLessThan(10);
    set.free();
  });

  test("a call when the memory has not grown does nothing", () => {
    const before = wasmMemoryBytes();
    growAhead();
    growAhead();
    expect(wasmMemoryBytes()).toBe(before);
  });
});
