/**
 * Internal replication: a durable write completes once K frontends have
 * applied it: the one that executed it (it applied the change before
 * shipping it) and K-1 others that acknowledged its revision.
 */
import { Backend, BackendMessage } from "../../src/backend/backend";
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

test.each([1, 2, 3])("with K=%i of 3 a revision is replicated exactly when K-1 frontends besides its executor acknowledged it", async (k) => {
  const applied: number[] = [];
  const backend = await openBackend(3, k, (m) => { if (m.type === "applied") applied.push(...m.entries.map((e) => e.rev)); });
  backend.submit([envelope(1)]);
  while (applied.length === 0) await new Promise((r) => setImmediate(r));
  const rev = applied[0];
  const executor = 1;
  let done = false;
  void backend.replication.whenReplicated(rev, executor).then(() => { done = true; });
  let acknowledged = 0;
  for (const frontend of [0, 2]) {
    await new Promise((r) => setImmediate(r));
    expect({ acknowledged, done }).toEqual({ acknowledged, done: acknowledged + 1 >= k });
    backend.replication.acknowledge(executor, rev); // the executor's own acknowledgement adds nothing
    await new Promise((r) => setImmediate(r));
    expect({ acknowledged, done }).toEqual({ acknowledged, done: acknowledged + 1 >= k });
    backend.replication.acknowledge(frontend, rev);
    acknowledged++;
  }
  await new Promise((r) => setImmediate(r));
  expect(done).toBe(true);
  await backend.close();
});

test("waiters complete as acknowledgements reach their revisions, whatever order they waited in", async () => {
  const applied: number[] = [];
  const backend = await openBackend(3, 2, (m) => { if (m.type === "applied") applied.push(...m.entries.map((e) => e.rev)); });
  backend.submit([envelope(1), envelope(2), envelope(3)]);
  while (applied.length < 3) await new Promise((r) => setImmediate(r));
  const completed: number[] = [];
  for (const rev of [...applied].reverse()) void backend.replication.whenReplicated(rev, 0).then(() => completed.push(rev));
  backend.replication.acknowledge(0, applied[2]); // the executor: counted already
  backend.replication.acknowledge(1, applied[1]);
  await new Promise((r) => setImmediate(r));
  expect(completed.sort()).toEqual([applied[0], applied[1]]);
  backend.replication.acknowledge(2, applied[2]);
  await new Promise((r) => setImmediate(r));
  expect(completed.sort()).toEqual(applied);
  await backend.close();
});

test("the factor changed while writes wait: lowered, those it now covers complete; raised, later writes wait for more; out of range refused", async () => {
  const applied: number[] = [];
  const backend = await openBackend(3, 3, (m) => { if (m.type === "applied") applied.push(...m.entries.map((e) => e.rev)); });
  backend.submit([envelope(1), envelope(2)]);
  while (applied.length < 2) await new Promise((r) => setImmediate(r));
  const completed: number[] = [];
  void backend.replication.whenReplicated(applied[0], 0).then(() => completed.push(applied[0]));
  backend.replication.acknowledge(1, applied[0]);
  await new Promise((r) => setImmediate(r));
  expect(completed).toEqual([]); // 2 of 3
  backend.replication.setFactor(2);
  await new Promise((r) => setImmediate(r));
  expect(completed).toEqual([applied[0]]); // 2 of 2: answered by the change itself
  backend.replication.setFactor(3);
  void backend.replication.whenReplicated(applied[1], 0).then(() => completed.push(applied[1]));
  backend.replication.acknowledge(1, applied[1]);
  await new Promise((r) => setImmediate(r));
  expect(completed).toEqual([applied[0]]); // 2 of 3 again
  backend.replication.acknowledge(2, applied[1]);
  await new Promise((r) => setImmediate(r));
  expect(completed).toEqual(applied);
  expect(backend.replication.acknowledged().slice(1)).toEqual([applied[1], applied[1]]); // frontend 0 never acknowledged
  for (const bad of [0, 4, 1.5]) {
    expect(() => backend.replication.setFactor(bad)).toThrow(`internal replication must be between 1 and the number of frontends (3), got ${bad}`);
  }
  expect(backend.replication.factor).toBe(3);
  await backend.close();
});
