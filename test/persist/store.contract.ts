/**
 * The persistence contract: every Store implementation, and the ChangeLog over
 * it, must pass this suite. level-store.test.ts and memory-store.test.ts run it.
 */
import { KeyRange, Store, StoreOp } from "../../src/persist/store";
import { ChangeLog, SNAPSHOT_BATCH_OPS_MAX } from "../../src/persist/changelog";
import { ChangeRecord, encodeRecord, unpackHistories } from "../../src/persist/records";
import { ActorId, Prefix, bucketKey, changeKey, keyToString, mergeKey, prefixBounds } from "../../src/persist/encoding";
import { MergekvError } from "../../src/errors";
import { SeededRandom, chooseSeed } from "../helpers/random";
import { ObservedStore } from "../helpers/observed-store";

export interface StoreUnderTest {
  /** The store, open. After `reopen` this is the reopened one. */
  readonly store: Store;
  /** Closes the store and opens it again over the same data. */
  reopen(): Promise<Store>;
  /** Closes the store and removes its data. */
  dispose(): Promise<void>;
}

const EVERYTHING: KeyRange = { gte: Buffer.alloc(0), lt: Buffer.alloc(64, 0xff) };
const ACTOR_LOW = "00".repeat(16) as ActorId;
const ACTOR_HIGH = "ff".repeat(16) as ActorId;

const bytes = (text: string) => Buffer.from(text, "latin1");
const key = (text: string) => keyToString(bytes(text));

async function collect(store: Store, range: KeyRange): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const [k, v] of store.entries(range)) out.push([k.toString("hex"), v.toString("latin1")]);
  return out;
}

function changeRecord(rev: number): ChangeRecord {
  return {
    rev,
    changes: [{ bucket: rev % 7, bytes: new Uint8Array(bytes(`change ${rev}`)) }],
    writes: [{ key: key(`key ${rev}`), value: new Uint8Array(bytes(`value ${rev}`)), lease: 0 }],
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<MergekvError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(MergekvError);
  return error as MergekvError;
}

export function runStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`${name}: Store contract`, () => {
    let subject: StoreUnderTest;
    beforeEach(async () => { subject = await makeStore(); });
    afterEach(async () => { await subject.dispose(); });
    defineStoreTests(() => subject);
  });

  describe(`${name}: ChangeLog over the store`, () => {
    let subject: StoreUnderTest;
    beforeEach(async () => { subject = await makeStore(); });
    afterEach(async () => { await subject.dispose(); });
    defineChangeLogTests(() => subject);
    defineCorruptionTests(() => subject);
  });
}

function defineStoreTests(current: () => StoreUnderTest): void {
  test("get of a missing key is undefined; a put is read back", async () => {
    const { store } = current();
    expect(await store.get(bytes("missing"))).toBeUndefined();
    await store.batch([{ type: "put", key: bytes("k"), value: bytes("v") }], true);
    expect((await store.get(bytes("k")))?.toString()).toBe("v");
  });

  test("stored values are copies: mutating the written or the read buffer changes nothing", async () => {
    const { store } = current();
    const value = bytes("original");
    await store.batch([{ type: "put", key: bytes("k"), value }], false);
    value.fill(0);
    const read = (await store.get(bytes("k")))!;
    read.fill(0);
    expect((await store.get(bytes("k")))?.toString()).toBe("original");
  });

  test("a batch applies its ops in order: put then del removes, del then put keeps", async () => {
    const { store } = current();
    await store.batch([
      { type: "put", key: bytes("a"), value: bytes("1") },
      { type: "del", key: bytes("a") },
      { type: "del", key: bytes("b") },
      { type: "put", key: bytes("b"), value: bytes("2") },
    ], true);
    expect(await store.get(bytes("a"))).toBeUndefined();
    expect((await store.get(bytes("b")))?.toString()).toBe("2");
  });

  test("a batch with an invalid op applies nothing (atomic)", async () => {
    const { store } = current();
    await store.batch([{ type: "put", key: bytes("kept"), value: bytes("before") }], true);
    const invalid: StoreOp[] = [
      { type: "put", key: bytes("kept"), value: bytes("after") },
      { type: "del", key: bytes("kept-too") },
      { type: "put", key: bytes("new") } as unknown as StoreOp, // no value
    ];
    await expect(store.batch(invalid, true)).rejects.toBeDefined();
    expect((await store.get(bytes("kept")))?.toString()).toBe("before");
    expect(await store.get(bytes("new"))).toBeUndefined();
  });

  test("deleting a missing key is not an error", async () => {
    const { store } = current();
    await store.batch([{ type: "del", key: bytes("never written") }], true);
    expect(await collect(store, EVERYTHING)).toEqual([]);
  });

  test("entries come in byte order, whatever the insertion order", async () => {
    const seed = chooseSeed("store entry order");
    const random = new SeededRandom(seed);
    const keys = [bytes("a"), bytes("a\x00"), bytes("a\xff"), bytes("b"), Buffer.of(0x00), Buffer.of(0xff), Buffer.of(0x7f, 0x80)];
    for (let i = 0; i < 40; i++) keys.push(Buffer.from(Array.from({ length: 1 + random.below(6) }, () => random.below(256))));
    const shuffled = [...keys].sort(() => random.next() - 0.5);
    const { store } = current();
    await store.batch(shuffled.map((k) => ({ type: "put", key: k, value: k })), false);
    const unique = [...new Map(keys.map((k) => [k.toString("hex"), k])).values()].sort(Buffer.compare);
    const read = await collect(store, EVERYTHING);
    expect(read.map(([k]) => k)).toEqual(unique.map((k) => k.toString("hex")));
    for (const [k, v] of read) expect(Buffer.from(v, "latin1").toString("hex")).toBe(k);
  });

  test("entries cover [gte, lt): start included, end excluded, empty when gte == lt", async () => {
    const { store } = current();
    await store.batch(["a", "b", "ba", "c", "d"].map((k) => ({ type: "put", key: bytes(k), value: bytes(k) })), false);
    const keysIn = async (gte: string, lt: string) => (await collect(store, { gte: bytes(gte), lt: bytes(lt) })).map(([, v]) => v);
    expect(await keysIn("b", "d")).toEqual(["b", "ba", "c"]);
    expect(await keysIn("b", "c")).toEqual(["b", "ba"]);
    expect(await keysIn("ab", "b")).toEqual([]);
    expect(await keysIn("c", "c")).toEqual([]);
  });

  test("data survives close and reopen", async () => {
    await current().store.batch([{ type: "put", key: bytes("durable"), value: bytes("yes") }, { type: "put", key: bytes("gone"), value: bytes("x") }], true);
    await current().store.batch([{ type: "del", key: bytes("gone") }], true);
    const reopened = await current().reopen();
    expect((await reopened.get(bytes("durable")))?.toString()).toBe("yes");
    expect(await reopened.get(bytes("gone"))).toBeUndefined();
  });

  test("a closed store refuses reads", async () => {
    const { store } = current();
    await store.close();
    await expect(store.get(bytes("k"))).rejects.toBeDefined();
  });

  test("sizeBytes counts written data; reclaim keeps live entries", async () => {
    const { store } = current();
    const value = Buffer.alloc(4096, 0x61);
    await store.batch(Array.from({ length: 16 }, (_, i) => ({ type: "put" as const, key: bytes(`k${i}`), value })), true);
    expect(await store.sizeBytes()).toBeGreaterThan(0);
    await store.batch(Array.from({ length: 8 }, (_, i) => ({ type: "del" as const, key: bytes(`k${i}`) })), true);
    await store.reclaim(EVERYTHING);
    expect((await collect(store, EVERYTHING)).map(([k]) => Buffer.from(k, "hex").toString())).toEqual(
      Array.from({ length: 8 }, (_, i) => `k${i + 8}`).sort());
  });
}

function defineChangeLogTests(current: () => StoreUnderTest): void {
  test("recover returns appended records sorted by revision, whatever their key order", async () => {
    const log = new ChangeLog(current().store, true);
    await log.append([{ key: changeKey(ACTOR_HIGH, 1), record: changeRecord(1) }]);
    await log.append([{ key: changeKey(ACTOR_LOW, 1), record: changeRecord(2) }, { key: mergeKey(3), record: changeRecord(3) }]);
    await log.append([{ key: changeKey(ACTOR_HIGH, 2), record: changeRecord(4) }]);
    const recovered = await new ChangeLog(await current().reopen(), true).recover(false);
    expect(recovered.records.map((r) => r.record)).toEqual([1, 2, 3, 4].map(changeRecord));
    expect(recovered.records.map((r) => [r.actor, r.seq])).toEqual([[ACTOR_HIGH, 1], [ACTOR_LOW, 1], [undefined, undefined], [ACTOR_HIGH, 2]]);
    expect(recovered.meta.rev).toBe(4);
    expect(recovered.quarantined).toEqual([]);
  });

  test("cluster and member ids are made once and kept", async () => {
    const first = await new ChangeLog(current().store, true).readMeta();
    const again = await new ChangeLog(await current().reopen(), true).readMeta();
    expect(first.clusterId).toMatch(/^\d+$/);
    expect(first.memberId).toMatch(/^\d+$/);
    expect([again.clusterId, again.memberId]).toEqual([first.clusterId, first.memberId]);
  });

  test("writeSnapshot deletes covered records and stores buckets and histories", async () => {
    const log = new ChangeLog(current().store, true);
    const keys = [1, 2, 3, 4].map((seq) => changeKey(ACTOR_LOW, seq));
    await log.append(keys.map((k, i) => ({ key: k, record: changeRecord(i + 1) })));
    const history = (text: string) => bytes(`history of ${text}`);
    await log.writeSnapshot({
      snapshotRev: 3,
      buckets: [[1, bytes("bucket one")], [2, bytes("bucket two")]],
      histories: [[key("x"), history("x")], [key("y"), history("y")]],
      covered: keys.slice(0, 3),
    });
    await log.writeSnapshot({ snapshotRev: 3, buckets: [[1, bytes("bucket one, later")]], histories: [[key("x"), undefined]], covered: [] });
    const recovered = await new ChangeLog(await current().reopen(), true).recover(false);
    expect(recovered.records.map((r) => r.record.rev)).toEqual([4]);
    expect(recovered.buckets.map(([b, v]) => [b, Buffer.from(v).toString()])).toEqual([[1, "bucket one, later"], [2, "bucket two"]]);
    expect([...unpackHistories(recovered.histories)].map(([k, v]) => [k, Buffer.from(v).toString()])).toEqual([[key("y"), "history of y"]]);
    expect(recovered.meta.snapshotRev).toBe(3);
    expect(recovered.meta.rev).toBe(4);
  });

  test("a snapshot that fails while storing state deletes no record", async () => {
    const observed = new ObservedStore(current().store);
    const log = new ChangeLog(observed, true);
    const keys = [1, 2].map((seq) => changeKey(ACTOR_LOW, seq));
    await log.append(keys.map((k, i) => ({ key: k, record: changeRecord(i + 1) })));
    observed.failWhen = (ops) => ops.some((op) => op.key[0] === Prefix.Bucket);
    const failure = await rejectionOf(log.writeSnapshot({ snapshotRev: 2, buckets: [[9, bytes("doc")]], histories: [[key("k"), bytes("h")]], covered: keys }));
    expect(failure.code).toBe("Unavailable");
    expect((await rejectionOf(log.append([{ key: changeKey(ACTOR_LOW, 3), record: changeRecord(3) }]))).code).toBe("Unavailable");
    const recovered = await new ChangeLog(current().store, true).recover(false);
    expect(recovered.records.map((r) => r.record.rev)).toEqual([1, 2]);
    expect([recovered.buckets, [...unpackHistories(recovered.histories)], recovered.meta.snapshotRev]).toEqual([[], [], 0]);
  });

  test("appends queued behind a snapshot do not join its batch", async () => {
    const observed = new ObservedStore(current().store);
    const log = new ChangeLog(observed, true);
    let open!: () => void;
    observed.gate = new Promise((resolve) => { open = resolve; });
    const first = log.append([{ key: changeKey(ACTOR_LOW, 1), record: changeRecord(1) }]);
    const snapshot = log.writeSnapshot({ snapshotRev: 1, buckets: [], histories: [], covered: [changeKey(ACTOR_LOW, 1)] });
    const later = log.append([{ key: changeKey(ACTOR_LOW, 2), record: changeRecord(2) }]);
    open();
    await Promise.all([first, snapshot, later]);
    const laterKey = changeKey(ACTOR_LOW, 2);
    const snapshotBatch = observed.batches.find((ops) => ops.some((op) => op.type === "del" && op.key.equals(changeKey(ACTOR_LOW, 1))))!;
    expect(snapshotBatch.some((op) => op.key.equals(laterKey))).toBe(false);
    expect((await log.recover(false)).records.map((r) => r.record.rev)).toEqual([2]);
  });

  test("a big snapshot is written in bounded batches, and appends made meanwhile land between them", async () => {
    const observed = new ObservedStore(current().store);
    const log = new ChangeLog(observed, true);
    const covered = Array.from({ length: 2 * SNAPSHOT_BATCH_OPS_MAX + 10 }, (_, i) => changeKey(ACTOR_LOW, i + 1));
    await log.append(covered.map((k, i) => ({ key: k, record: changeRecord(i + 1) })));
    const buckets: [number, Uint8Array][] = Array.from({ length: SNAPSHOT_BATCH_OPS_MAX + 5 }, (_, b) => [b, bytes(`doc ${b}`)]);
    let snapshotDone = false;
    const snapshot = log.writeSnapshot({ snapshotRev: covered.length, buckets, histories: [], covered }).then(() => { snapshotDone = true; });
    const appendKey = changeKey(ACTOR_LOW, covered.length + 1);
    await log.append([{ key: appendKey, record: changeRecord(covered.length + 1) }]);
    expect(snapshotDone).toBe(false); // durable while the snapshot still had batches to go
    await snapshot;
    const snapshotBatches = observed.batches.filter((ops) => ops.some((op) => op.key[0] === Prefix.Bucket || (op.type === "del" && op.key[0] === Prefix.Change)));
    expect(snapshotBatches.length).toBeGreaterThanOrEqual(5);
    for (const ops of snapshotBatches) expect(ops.length).toBeLessThanOrEqual(SNAPSHOT_BATCH_OPS_MAX + 1); // + the meta rev
    const recovered = await log.recover(false);
    expect(recovered.records.map((r) => r.record.rev)).toEqual([covered.length + 1]);
    expect(recovered.buckets.length).toBe(buckets.length);
  });

  test("a snapshot stopped while deleting what it covers leaves the newest covered records, with the state stored", async () => {
    const observed = new ObservedStore(current().store);
    const log = new ChangeLog(observed, true);
    const covered = Array.from({ length: 3 * SNAPSHOT_BATCH_OPS_MAX }, (_, i) => changeKey(ACTOR_LOW, i + 1));
    await log.append(covered.map((k, i) => ({ key: k, record: changeRecord(i + 1) })));
    let deletionBatches = 0;
    observed.failWhen = (ops) => ops.some((op) => op.type === "del" && op.key[0] === Prefix.Change) && ++deletionBatches === 2;
    const failure = await rejectionOf(log.writeSnapshot({ snapshotRev: covered.length, buckets: [[7, bytes("doc")]], histories: [[key("k"), bytes("h")]], covered }));
    expect(failure.code).toBe("Unavailable");
    const recovered = await new ChangeLog(current().store, true).recover(false);
    // The first deletion batch (snapshotRev and the oldest records) went through; the newer records all stand.
    const deleted = SNAPSHOT_BATCH_OPS_MAX - 1;
    expect(recovered.records.map((r) => r.record.rev)).toEqual(Array.from({ length: covered.length - deleted }, (_, i) => deleted + 1 + i));
    expect(recovered.buckets.map(([b, v]) => [b, Buffer.from(v).toString()])).toEqual([[7, "doc"]]);
    expect(recovered.meta.snapshotRev).toBe(covered.length);
  });

  test("meta rev is a high-water mark: it never goes down, even once records are gone", async () => {
    const log = new ChangeLog(current().store, true);
    await log.append([{ key: changeKey(ACTOR_LOW, 1), record: changeRecord(9) }]);
    await log.append([{ key: changeKey(ACTOR_LOW, 2), record: changeRecord(4) }]);
    await log.writeSnapshot({ snapshotRev: 4, buckets: [], histories: [], covered: [1, 2].map((seq) => changeKey(ACTOR_LOW, seq)) });
    const restarted = new ChangeLog(await current().reopen(), true);
    await restarted.setCompactRev(2);
    const recovered = await restarted.recover(false);
    expect(recovered.records).toEqual([]);
    expect(recovered.meta.rev).toBe(9);
    expect(recovered.meta.compactRev).toBe(2);
  });

  test("group commit: many concurrent appends all resolve, share batches, and are all recovered", async () => {
    const appendCount = 300;
    const observed = new ObservedStore(current().store);
    const log = new ChangeLog(observed, true);
    const appends = Array.from({ length: appendCount }, (_, i) =>
      log.append([{ key: changeKey(i % 2 ? ACTOR_HIGH : ACTOR_LOW, i + 1), record: changeRecord(i + 1) }]));
    await Promise.all(appends);
    await log.drain();
    expect(observed.batches.length).toBeLessThan(appendCount);
    const recovered = await new ChangeLog(current().store, true).recover(false);
    expect(recovered.records.map((r) => r.record.rev)).toEqual(Array.from({ length: appendCount }, (_, i) => i + 1));
    expect(recovered.meta.rev).toBe(appendCount);
  });
}

function defineCorruptionTests(current: () => StoreUnderTest): void {
  /** Appends two good records, then writes `bad` under `badKey` behind the log's back. */
  async function withBadEntry(badKey: Buffer, bad: Buffer): Promise<void> {
    const log = new ChangeLog(current().store, true);
    await log.append([{ key: changeKey(ACTOR_LOW, 1), record: changeRecord(1) }, { key: changeKey(ACTOR_LOW, 3), record: changeRecord(3) }]);
    await current().store.batch([{ type: "put", key: badKey, value: bad }], true);
  }

  const corruptRecord = () => { const b = encodeRecord(changeRecord(2)); b[b.length - 1] ^= 0x01; return b; };

  test("a corrupt change record makes recover(false) throw Corrupt naming its key", async () => {
    const badKey = changeKey(ACTOR_LOW, 2);
    await withBadEntry(badKey, corruptRecord());
    const error = await rejectionOf(new ChangeLog(current().store, true).recover(false));
    expect(error.code).toBe("Corrupt");
    expect(error.message).toContain(badKey.toString("hex"));
  });

  test("recover(true) quarantines a corrupt record, reports it, and keeps its bytes", async () => {
    const badKey = changeKey(ACTOR_LOW, 2);
    const bad = corruptRecord();
    await withBadEntry(badKey, bad);
    const recovered = await new ChangeLog(current().store, true).recover(true);
    expect(recovered.records.map((r) => r.record.rev)).toEqual([1, 3]);
    expect(recovered.quarantined).toHaveLength(1);
    expect(recovered.quarantined[0]).toContain(badKey.toString("hex"));
    expect(await current().store.get(badKey)).toBeUndefined();
    const setAside = (await collect(current().store, EVERYTHING)).filter(([, v]) => v === bad.toString("latin1"));
    expect(setAside).toHaveLength(1);
    expect(setAside[0][0].endsWith(badKey.toString("hex"))).toBe(true);
    const again = await new ChangeLog(await current().reopen(), true).recover(false);
    expect(again.records.map((r) => r.record.rev)).toEqual([1, 3]);
  });

  test("several corrupt records in a row are all quarantined", async () => {
    const badKeys = [2, 4, 5].map((seq) => changeKey(ACTOR_LOW, seq));
    await withBadEntry(badKeys[0], bytes("garbage"));
    await current().store.batch(badKeys.slice(1).map((k) => ({ type: "put", key: k, value: bytes("garbage") })), true);
    const recovered = await new ChangeLog(current().store, true).recover(true);
    expect(recovered.quarantined).toHaveLength(3);
    expect(recovered.records.map((r) => r.record.rev)).toEqual([1, 3]);
    expect(await collect(current().store, prefixBounds(Prefix.Change))).toHaveLength(2);
  });

  test("a corrupt bucket blob is Corrupt naming its key, and quarantined on repair", async () => {
    await withBadEntry(bucketKey(5), bytes("not a sealed blob"));
    const error = await rejectionOf(new ChangeLog(current().store, true).recover(false));
    expect(error.code).toBe("Corrupt");
    expect(error.message).toContain(bucketKey(5).toString("hex"));
    const recovered = await new ChangeLog(current().store, true).recover(true);
    expect(recovered.buckets).toEqual([]);
    expect(recovered.quarantined[0]).toContain(bucketKey(5).toString("hex"));
  });

  test("a merge record whose revision disagrees with its key is Corrupt", async () => {
    await withBadEntry(mergeKey(7), encodeRecord(changeRecord(8)));
    const error = await rejectionOf(new ChangeLog(current().store, true).recover(false));
    expect(error.code).toBe("Corrupt");
    expect(error.message).toContain(mergeKey(7).toString("hex"));
  });
}
