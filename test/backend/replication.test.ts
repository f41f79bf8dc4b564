/**
 * Internal replication: a write completes only once K frontends (the
 * originating one included) have acknowledged applying its revision.
 */
import { Backend, BackendMessage, kthLargest } from "../../src/backend/backend";
import { MemoryStore } from "../../src/persist/memory-store";
import { ActorId, KeyString } from "../../src/persist/encoding";

async function openBackend(frontends: number, k: number, broadcast: (m: BackendMessage) => void): Promise<Backend> {
  const store = new MemoryStore();
  await store.open();
  return Backend.open(store, true, { frontends, internalReplication: k, snapshotCount: 1_000_000, broadcast });
}

/** A write with no Automerge change: a delete of an absent key (a put would be reconciled away by a merge entry). */
const envelope = (seq: number) => ({
  actor: "ab".repeat(16) as ActorId,
  seq,
  changes: [],
  writes: [{ key: `k${seq}` as KeyString, value: null, lease: 0 }],
});

test("kthLargest: how far k replicas have all got", () => {
  expect(kthLargest([5, 3, 9], 1)).toBe(9);
  expect(kthLargest([5, 3, 9], 2)).toBe(5);
  expect(kthLargest([5, 3, 9], 3)).toBe(3);
});

test.each([1, 2, 3])("with K=%i of 3 a revision is replicated exactly when K frontends acknowledged it", async (k) => {
  const applied: number[] = [];
  const backend = await openBackend(3, k, (m) => { if (m.type === "applied") applied.push(...m.entries.map((e) => e.rev)); });
  backend.submit([envelope(1)]);
  while (applied.length === 0) await new Promise((r) => setImmediate(r));
  const rev = applied[0];
  let done = false;
  void backend.whenReplicated(rev).then(() => { done = true; });
  for (let frontend = 0; frontend < 3; frontend++) {
    await new Promise((r) => setImmediate(r));
    expect({ acknowledged: frontend, done }).toEqual({ acknowledged: frontend, done: frontend >= k });
    backend.acknowledge(frontend, rev);
  }
  await new Promise((r) => setImmediate(r));
  expect(done).toBe(true);
  await backend.close();
});

test("waiters complete in revision order as acknowledgements arrive", async () => {
  const applied: number[] = [];
  const backend = await openBackend(2, 2, (m) => { if (m.type === "applied") applied.push(...m.entries.map((e) => e.rev)); });
  backend.submit([envelope(1), envelope(2), envelope(3)]);
  while (applied.length < 3) await new Promise((r) => setImmediate(r));
  const completed: number[] = [];
  for (const rev of [...applied].reverse()) void backend.whenReplicated(rev).then(() => completed.push(rev));
  backend.acknowledge(0, applied[2]);
  backend.acknowledge(1, applied[1]);
  await new Promise((r) => setImmediate(r));
  expect(completed.sort()).toEqual([applied[0], applied[1]]);
  backend.acknowledge(1, applied[2]);
  await new Promise((r) => setImmediate(r));
  expect(completed.sort()).toEqual(applied);
  await backend.close();
});
