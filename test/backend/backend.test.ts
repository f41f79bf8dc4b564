/*
 * The backend with real frontends (Executors) wired to it in-process, over an
 * in-memory store that outlives a "restart" (close, then Backend.open again).
 */
import { randomBytes } from "node:crypto";
import { Backend, nextTurn } from "../../src/backend/backend";
import { COMPACTION_TRIM_KEYS_PER_TURN } from "../../src/backend/mvcc";
import { RecordReader } from "../../src/persist/records";
import { Replica } from "../../src/backend/replica";
import { ownerOf, bucketOf } from "../../src/backend/buckets";
import { Executed, Executor } from "../../src/frontend/executor";
import { MemoryStore } from "../../src/persist/memory-store";
import { ActorId, KeyString } from "../../src/persist/encoding";
import { DeleteRangeResult, KvRequest, RangeResult, TxnResult } from "../../src/frontend/requests";
import { deleteRequest, putRequest, rangeRequest, text } from "../helpers/frontend";
import { INITIAL_REVISION, SNAPSHOT_BATCH_OPS_MAX } from "../../src/persist/changelog";
import { Store } from "../../src/persist/store";
import { Prefix } from "../../src/persist/encoding";
import { ObservedStore } from "../helpers/observed-store";
import { SeededRandom, chooseSeed } from "../helpers/random";

/** A fresh store is at INITIAL_REVISION; its n-th write gets R + n. */
const R = INITIAL_REVISION;

const FRONTENDS = 2;

interface Running {
  backend: Backend;
  frontends: Executor[];
}

/**
 * Opens a backend over `store` and starts FRONTENDS executors from its
 * bootstrap; `fetched` is told when a frontend's borrow has its documents.
 */
async function start(store: Store, fetched?: (frontend: number) => void): Promise<Running> {
  const frontends: Executor[] = [];
  const backend = await Backend.open(store, false, {
    internalReplication: 1,
    frontends: FRONTENDS,
    snapshotCount: Number.MAX_SAFE_INTEGER,
    broadcast: (m) => {
      for (const f of frontends) {
        if (m.type === "applied") f.onApplied(m.entries);
        else f.onCompact(m.rev);
      }
    },
  });
  const bootstrap = backend.takeBootstrap();
  for (let i = 0; i < FRONTENDS; i++) {
    // As in the product: each frontend owns 1/FRONTENDS of the buckets and borrows the rest.
    const replica = new Replica(randomBytes(16).toString("hex") as ActorId, { owns: (b) => ownerOf(b, FRONTENDS) === i });
    replica.bootstrap(bootstrap);
    const fetch = async (buckets: [number, number][]) => {
      const loans = backend.lend(buckets);
      fetched?.(i);
      return loans;
    };
    frontends.push(new Executor(replica, (e) => backend.submit([e]), fetch));
  }
  return { backend, frontends };
}

async function restart(running: Running, store: MemoryStore): Promise<Running> {
  await running.backend.snapshot();
  await running.backend.close();
  return start(store);
}

const put = (k: string, v: string): KvRequest => ({ kind: "put", req: putRequest(k, v) });
const remove = (k: string): KvRequest => ({ kind: "deleteRange", req: deleteRequest(k) });

async function read(frontend: Executor, k: string, revision = 0): Promise<string | undefined> {
  const { result } = await frontend.execute({ kind: "range", req: rangeRequest(k, { revision }) }, 0);
  const kv = (result as { kvs: { value: Uint8Array }[] }).kvs[0];
  return kv && text(kv.value);
}

let store: MemoryStore;
beforeEach(async () => {
  store = new MemoryStore();
  await store.open();
});

test("writes through any frontend get one revision each, in order, seen by every frontend", async () => {
  const { backend, frontends } = await start(store);
  expect((await frontends[0].execute(put("a", "1"), 0)).revision).toBe(R + 1);
  expect((await frontends[1].execute(put("b", "2"), 0)).revision).toBe(R + 2);
  const txn = await frontends[1].execute({ kind: "txn", req: { compare: [], success: [{ put: putRequest("a", "3") }, { put: putRequest("c", "4") }], failure: [] } }, 0);
  expect([txn.revision, (txn.result as TxnResult).succeeded]).toEqual([R + 3, true]);
  expect(backend.revision).toBe(R + 3);
  for (const f of frontends) expect(await read(f, "a")).toBe("3");
  await backend.close();
});

test("state and revision survive a restart from a snapshot", async () => {
  const first = await start(store);
  await first.frontends[0].execute(put("a", "1"), 0);
  await first.frontends[0].execute(put("a", "2"), 0);
  const second = await restart(first, store);
  expect(second.backend.revision).toBe(R + 2);
  for (const f of second.frontends) expect([await read(f, "a"), await read(f, "a", R + 1)]).toEqual(["2", "1"]);
  expect((await second.frontends[1].execute(put("a", "3"), 0)).revision).toBe(R + 3);
  await second.backend.close();
});

test("a restart after compacting away the newest revisions' history keeps the revision", async () => {
  const first = await start(store);
  await first.frontends[0].execute(put("kept", "1"), 0);
  await first.frontends[0].execute(put("gone", "2"), 0);
  await first.frontends[0].execute(remove("gone"), 0);
  await first.backend.compact(R + 3);
  const second = await restart(first, store);
  expect([second.backend.revision, second.backend.compactRevision]).toEqual([R + 3, R + 3]);
  for (const f of second.frontends) {
    expect(f.replica.rev).toBe(R + 3);
    expect(await read(f, "kept", R + 3)).toBe("1");
  }
  expect((await second.frontends[0].execute(put("next", "x"), 0)).revision).toBe(R + 4);
  await second.backend.close();
});

test("a crash while a snapshot deletes the records it covers loses nothing and brings nothing back", async () => {
  const observed = new ObservedStore(store);
  const first = await start(observed);
  const f = first.frontends[0];
  // Enough records for three deletion batches; "gone" is put in the second batch's range and
  // deleted in the third's, then compacted away, so the stored state has no trace of it.
  const total = 3 * SNAPSHOT_BATCH_OPS_MAX;
  const putGoneAt = SNAPSHOT_BATCH_OPS_MAX + 100;
  const deleteGoneAt = 2 * SNAPSHOT_BATCH_OPS_MAX + 100;
  for (let i = 1; i <= total; i++) {
    if (i === putGoneAt) await f.execute(put("gone", "x"), 0);
    else if (i === deleteGoneAt) await f.execute(remove("gone"), 0);
    else await f.execute(put(`k${i % 50}`, `v${i}`), 0);
  }
  await first.backend.compact(first.backend.revision);
  let deletionBatches = 0;
  observed.failWhen = (ops) => ops.some((op) => op.type === "del" && op.key[0] === Prefix.Change) && ++deletionBatches === 2;
  await expect(first.backend.snapshot()).rejects.toThrow();
  const second = await start(store); // the first backend is abandoned mid-snapshot, as by a kill
  expect(second.backend.revision).toBe(R + total);
  for (const fe of second.frontends) {
    expect(await read(fe, "gone")).toBeUndefined();
    for (let k = 0; k < 50; k++) {
      const last = total - ((total - k) % 50);
      expect(await read(fe, `k${k}`)).toBe(`v${last}`);
    }
  }
  await second.backend.close();
});

test("frontends restart at the backend's revision even when the last write changed nothing", async () => {
  const first = await start(store);
  await first.frontends[0].execute(put("k", "v"), 0);
  // A write that deletes a key nobody has: it takes a revision but changes no key's history.
  first.backend.submit([{ actor: randomBytes(16).toString("hex") as ActorId, seq: 1, changes: [], writes: [{ key: "absent" as KeyString, value: null, lease: 0 }] }]);
  await first.backend.close();
  expect(first.backend.revision).toBe(R + 2);
  const second = await restart(first, store);
  expect(second.backend.revision).toBe(R + 2);
  for (const f of second.frontends) expect(f.replica.rev).toBe(second.backend.revision);
  expect((await second.frontends[0].execute(put("k", "w"), 0)).revision).toBe(R + 3);
  await second.backend.close();
});

test("writes to buckets a frontend does not own borrow them: concurrent multi-bucket txns from every frontend converge", async () => {
  const { backend, frontends } = await start(store);
  // Keys spread over buckets owned by every frontend.
  const keys: string[] = [];
  for (let i = 0; keys.length < 16; i++) keys.push(`key-${i}`);
  expect(new Set(keys.map((k) => ownerOf(bucketOf(k), FRONTENDS))).size).toBe(FRONTENDS);
  const txn = (value: string): KvRequest => ({ kind: "txn", req: { compare: [], success: keys.map((k) => ({ put: putRequest(k, value) })), failure: [] } });
  // Each frontend writes every key, several times at once: borrowed documents are shared and reused.
  const results = await Promise.all(frontends.flatMap((f, i) => [0, 1, 2].map((n) => f.execute(txn(`f${i}-${n}`), 0))));
  expect(new Set(results.map((r) => r.revision)).size).toBe(results.length);
  await backend.close();
  expect(backend.replica.buckets.missingDeps()).toBe(0);
  const last = results.reduce((a, b) => (a.revision > b.revision ? a : b));
  const winner = frontends.findIndex((f, i) => [0, 1, 2].some((n) => results[i * 3 + n] === last));
  expect(winner).toBeGreaterThanOrEqual(0);
  // Every replica reads one value for all keys of the last txn (a Txn is atomic) and they all agree.
  for (const f of frontends) {
    const values = new Set(await Promise.all(keys.map((k) => read(f, k))));
    expect(values.size).toBe(1);
  }
  const seen = await Promise.all(frontends.map((f) => read(f, keys[0])));
  expect(new Set(seen).size).toBe(1);
});

test("a frontend borrowing the same foreign buckets again takes the changes since, not a load, while their owner writes them too", async () => {
  const { backend, frontends } = await start(store);
  const keys: string[] = [];
  for (let i = 0; keys.length < 8; i++) if (ownerOf(bucketOf(`kept-${i}`), FRONTENDS) !== 0) keys.push(`kept-${i}`);
  const txn = (value: string): KvRequest => ({ kind: "txn", req: { compare: [], success: keys.map((k) => ({ put: putRequest(k, value) })), failure: [] } });
  const owner = (k: string) => frontends[ownerOf(bucketOf(k), FRONTENDS)];
  let writes = 0;
  for (let round = 0; round < 5; round++) {
    await frontends[0].execute(txn(`txn-${round}`), 0);
    await owner(keys[round])!.execute(put(keys[round], `owner-${round}`), 0); // the owner writes one in between
    writes += 2;
  }
  const last = await frontends[0].execute(txn("last"), 0);
  writes++;
  expect(frontends[0].replica.buckets.borrows).toEqual({ loaded: new Set(keys.map(bucketOf)).size, kept: 5 * new Set(keys.map(bucketOf)).size });
  expect(last.revision).toBe(R + writes); // one revision per write: no CRDT merge had to be reconciled
  for (const f of frontends) expect(await Promise.all(keys.map((k) => read(f, k)))).toEqual(keys.map(() => "last"));
  await backend.close();
  expect(backend.replica.buckets.missingDeps()).toBe(0);
});

test("a write spanning many foreign buckets loads them over several turns: a put sent while it borrows is not held up", async () => {
  let putDuringBorrow: Promise<Executed> | undefined;
  let mine = "mine-0";
  for (let i = 1; ownerOf(bucketOf(mine), FRONTENDS) !== 0; i++) mine = `mine-${i}`;
  const { backend, frontends } = await start(store, (frontend) => {
    if (frontend === 0 && !putDuringBorrow) setImmediate(() => { putDuringBorrow = frontends[0].execute(put(mine, "x"), 0); });
  });
  const keys = Array.from({ length: 600 }, (_, i) => `big/${String(i).padStart(4, "0")}`);
  await Promise.all(keys.map((k) => frontends[ownerOf(bucketOf(k), FRONTENDS)].execute(put(k, "v".repeat(1024)), 0)));
  const foreign = new Set(keys.map(bucketOf).filter((b) => ownerOf(b, FRONTENDS) !== 0));
  expect(foreign.size).toBeGreaterThan(250); // enough loads for several BORROW_SLICE_MS slices
  const deleted = await frontends[0].execute({ kind: "deleteRange", req: deleteRequest("big/", "big0") }, 0);
  expect((deleted.result as DeleteRangeResult).deleted).toBe(keys.length);
  const sentLater = await putDuringBorrow!;
  // Sent after the delete had its documents, and done first: the borrow let it through.
  expect(sentLater.revision).toBeLessThan(deleted.revision);
  for (const f of frontends) {
    expect(await read(f, mine)).toBe("x");
    const { result } = await f.execute({ kind: "range", req: rangeRequest("big/", { rangeEnd: "big0" }) }, 0);
    expect((result as RangeResult).count).toBe(0);
  }
  await backend.close();
  expect(backend.replica.buckets.missingDeps()).toBe(0);
});

test("random multi-key Txns, puts and deletes from every frontend, at once and then one at a time, borrowing and keeping loans: no merge one at a time, and every replica ends with the CRDT's state", async () => {
  const seed = chooseSeed("backend borrows");
  const random = new SeededRandom(seed);
  const { backend, frontends } = await start(store);
  const keys = Array.from({ length: 24 }, (_, i) => `r/${i}`);
  const some = () => keys.filter(() => random.next() < 0.25);
  const op = (n: number): Promise<Executed> => {
    const f = frontends[random.below(FRONTENDS)];
    const roll = random.next();
    if (roll < 0.3) return f.execute(put(random.pick(keys), `p${n}`), 0);
    if (roll < 0.4) return f.execute(remove(random.pick(keys)), 0);
    const success = some().map((k) => (random.next() < 0.8 ? { put: putRequest(k, `t${n}`) } : { deleteRange: deleteRequest(k) }));
    return f.execute({ kind: "txn", req: { compare: [], success, failure: [] } }, 0);
  };
  let n = 0;
  for (let round = 0; round < 40; round++) await Promise.all(Array.from({ length: 1 + random.below(6) }, () => op(n++)));
  // Then one at a time: nothing is concurrent, so no write may need a CRDT merge (a merge entry would
  // take a revision no request got): a kept loan must have every change since it was lent.
  const revisions = new Set<number>();
  const before = backend.revision;
  for (let i = 0; i < 60; i++) {
    const r = await op(n++);
    if (r.revision > before) revisions.add(r.revision);
  }
  expect({ seed, revisions: backend.revision - before }).toEqual({ seed, revisions: revisions.size });
  await backend.close();
  expect(backend.replica.buckets.missingDeps()).toBe(0);
  const borrows = frontends.map((f) => f.replica.buckets.borrows);
  expect(borrows.some((b) => b.kept > 0)).toBe(true); // kept loans were taken again
  for (const k of keys) {
    const crdt = backend.replica.buckets.get(k as KeyString);
    const mvcc = backend.replica.mvcc.get(k)?.value;
    expect({ seed, k, crdt: crdt && text(crdt) }).toEqual({ seed, k, crdt: mvcc && text(mvcc) }); // backend invariant 3
    for (const f of frontends) expect({ seed, k, read: await read(f, k) }).toEqual({ seed, k, read: mvcc && text(mvcc) });
  }
});

test("Compact with physical answers once every history is trimmed; without it, at once, the trimming still under way", async () => {
  const { backend } = await start(store);
  const keys = Array.from({ length: 1.5 * COMPACTION_TRIM_KEYS_PER_TURN }, (_, i) => `many/${String(i).padStart(6, "0")}` as KeyString);
  const actor = "ab".repeat(16) as ActorId;
  const versions = (k: string) => new RecordReader(backend.replica.mvcc.encodeHistory(k)!, k).u32();
  for (let round = 0; round < 2; round++) {
    for (const v of ["old", "new"]) backend.submit([{ actor, seq: round * 2 + (v === "old" ? 1 : 2), changes: [], writes: keys.map((key) => ({ key, value: Buffer.from(v), lease: 0 })) }]);
    while (backend.revision < R + round * 2 + 2) await nextTurn();
    await backend.compact(backend.revision, round === 1);
    const last = keys[keys.length - 1];
    expect({ round, versions: versions(last) }).toEqual({ round, versions: round === 1 ? 1 : 2 }); // physical: trimmed already
    await backend.replica.mvcc.trimmed();
    expect(versions(last)).toBe(1);
  }
  await backend.close();
});

describe("concurrent writers of one key (CRDT merges)", () => {
  /** Two authors write `k` from the same empty start; Automerge's winner is the greater actor id. */
  function concurrentWrites(stripDeps: boolean) {
    const low = new Replica("11".repeat(16) as ActorId);
    const high = new Replica("ff".repeat(16) as ActorId);
    high.buckets.put("k" as KeyString, Buffer.from("from-high"));
    low.buckets.put("k" as KeyString, Buffer.from("from-low"));
    const strip = (cs: ReturnType<typeof low.buckets.commit>) => (stripDeps ? cs.map(({ bucket, bytes }) => ({ bucket, bytes })) : cs);
    const write = (key: string, value: string) => ({ key: key as KeyString, value: Buffer.from(value), lease: 0 });
    return [
      { actor: high.actor, seq: 1, changes: strip(high.buckets.commit()), writes: [write("k", "from-high")] },
      { actor: low.actor, seq: 1, changes: strip(low.buckets.commit()), writes: [write("k", "from-low")] },
    ];
  }

  for (const stripDeps of [false, true]) {
    test(`a merge that resolves away from the last write gets its own revision${stripDeps ? " (changes without deps and hash)" : ""}`, async () => {
      const { backend, frontends } = await start(store);
      // The greater actor's write arrives first, so the last write (from-low) is not the CRDT's winner.
      backend.submit(concurrentWrites(stripDeps));
      await backend.close();
      expect(backend.revision).toBe(R + 3); // two writes and the merge entry
      expect(text(backend.replica.mvcc.get("k")!.value)).toBe("from-high");
      expect(text(backend.replica.buckets.get("k" as KeyString)!)).toBe("from-high");
      for (const f of frontends) expect(await read(f, "k")).toBe("from-high");
      expect(await read(frontends[0], "k", R + 2)).toBe("from-low");
    });
  }

  test("changes that extend the document are applied without loading it", async () => {
    const { backend, frontends } = await start(store);
    for (let i = 0; i < 20; i++) await frontends[i % FRONTENDS].execute(put(`key-${i}`, `v${i}`), 0);
    expect(backend.revision).toBe(R + 20); // no merge entries
    expect(backend.replica.buckets.loads).toBe(0); // stored as bytes and chunks only, never loaded
    expect(backend.replica.buckets.loaded).toBe(0);
    for (let i = 0; i < 20; i++) expect(text(backend.replica.buckets.get(`key-${i}` as KeyString)!)).toBe(`v${i}`);
    await backend.close();
  });
});
