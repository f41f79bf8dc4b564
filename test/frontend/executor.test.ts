import { FakeBackend, kvSummary as kvOf, errorCode, key, op, text } from "../helpers/frontend";
import { SortTarget } from "../../src/frontend/requests";
import { hashKV } from "../../src/frontend/operations";
import { MvccStore } from "../../src/backend/mvcc";
import { KeyString } from "../../src/persist/encoding";

let backend: FakeBackend;
beforeEach(() => { backend = new FakeBackend(); });

describe("Put and Range", () => {
  test("a first put has create = mod = its revision and version 1; the next raises mod and version", async () => {
    expect((await backend.put("k", "v1")).revision).toBe(1);
    expect((await backend.put("other", "x")).revision).toBe(2);
    const put = await backend.put("k", "v2");
    expect(put.revision).toBe(3);
    const got = await backend.range("k");
    expect(got.revision).toBe(3);
    expect(got.result.kvs.map(kvOf)).toEqual([{ key: "k", create: 1, mod: 3, version: 2, value: "v2", lease: 0 }]);
    expect([got.result.count, got.result.more]).toEqual([1, false]);
  });

  test("prev_kv returns the previous kv only when asked and only if the key existed", async () => {
    expect((await backend.put("k", "a", { prevKv: true })).result.prevKv).toBeUndefined();
    expect((await backend.put("k", "b")).result.prevKv).toBeUndefined();
    const third = await backend.put("k", "c", { prevKv: true });
    expect(kvOf(third.result.prevKv)).toEqual({ key: "k", create: 1, mod: 2, version: 2, value: "b", lease: 0 });
  });

  test("ignore_value keeps the stored value and still writes a new revision", async () => {
    await backend.put("k", "kept");
    const put = await backend.put("k", "", { ignoreValue: true });
    expect(put.revision).toBe(2);
    expect(kvOf((await backend.range("k")).result.kvs[0])).toEqual({ key: "k", create: 1, mod: 2, version: 2, value: "kept", lease: 0 });
  });

  test("ignore_value and ignore_lease errors: KeyNotFound, ValueProvided, LeaseProvided", async () => {
    expect(await errorCode(backend.put("missing", "", { ignoreValue: true }))).toBe("KeyNotFound");
    expect(await errorCode(backend.put("missing", "v", { ignoreLease: true }))).toBe("KeyNotFound");
    await backend.put("k", "v");
    expect(await errorCode(backend.put("k", "value", { ignoreValue: true }))).toBe("ValueProvided");
    expect(await errorCode(backend.put("k", "v", { ignoreLease: true, lease: 5 }))).toBe("LeaseProvided");
    const kept = await backend.put("k", "w", { ignoreLease: true });
    expect(kvOf((await backend.range("k")).result.kvs[0])).toMatchObject({ value: "w", lease: 0, mod: kept.revision });
    expect(backend.revision).toBe(2);
  });

  test("a lease that does not exist is LeaseNotFound and writes nothing", async () => {
    expect(await errorCode(backend.put("k", "v", { lease: 12345 }))).toBe("LeaseNotFound");
    expect((await backend.range("k")).result.count).toBe(0);
    expect(backend.envelopes).toBe(0);
  });

  test("an empty key is KeyNotProvided for Range, Put and DeleteRange", async () => {
    expect(await errorCode(backend.range(""))).toBe("KeyNotProvided");
    expect(await errorCode(backend.put("", "v"))).toBe("KeyNotProvided");
    expect(await errorCode(backend.deleteRange(""))).toBe("KeyNotProvided");
  });

  test("concurrent writes get consecutive revisions; prev_kv sees the write issued before it", async () => {
    const [first, second] = await Promise.all([backend.put("k", "1"), backend.put("k", "2", { prevKv: true })]);
    expect([first.revision, second.revision]).toEqual([1, 2]);
    expect(kvOf(second.result.prevKv)).toMatchObject({ value: "1", mod: 1 });
  });
});

describe("DeleteRange", () => {
  beforeEach(async () => { await backend.putAll([["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]]); });

  test("deletes a range at one revision and returns the deleted kvs with prev_kv", async () => {
    const deleted = await backend.deleteRange("b", "d", true);
    expect(deleted.revision).toBe(5);
    expect(deleted.result.deleted).toBe(2);
    expect(deleted.result.prevKvs.map(kvOf)).toEqual([
      { key: "b", create: 2, mod: 2, version: 1, value: "2", lease: 0 },
      { key: "c", create: 3, mod: 3, version: 1, value: "3", lease: 0 },
    ]);
    expect((await backend.range("a", { rangeEnd: "\0" })).result.kvs.map((kv) => kv.key)).toEqual(["a", "d"]);
    expect((await backend.range("b", { revision: 4 })).result.count).toBe(1);
  });

  test("without prev_kv only the count comes back; a single key and from-key work", async () => {
    const single = await backend.deleteRange("a");
    expect([single.result.deleted, single.result.prevKvs]).toEqual([1, []]);
    const rest = await backend.deleteRange("c", "\0");
    expect(rest.result.deleted).toBe(2);
    expect(rest.revision).toBe(single.revision + 1);
  });

  test("deleting nothing does not raise the revision", async () => {
    const none = await backend.deleteRange("x", "z");
    expect([none.result.deleted, none.revision, backend.envelopes]).toEqual([0, 4, 4]);
  });
});

describe("Range options", () => {
  const ALL = { rangeEnd: "\0" };
  beforeEach(async () => { await backend.putAll([["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["e", "5"]]); });

  test("limit cuts the result and sets more; count is every match", async () => {
    const limited = await backend.range("a", { ...ALL, limit: 2 });
    expect(limited.result.kvs.map((kv) => kv.key)).toEqual(["a", "b"]);
    expect([limited.result.more, limited.result.count]).toEqual([true, 5]);
    const exact = await backend.range("a", { ...ALL, limit: 5 });
    expect([exact.result.more, exact.result.kvs.length]).toEqual([false, 5]);
  });

  test("min/max mod and create filters cut kvs but not count", async () => {
    const byMod = await backend.range("a", { ...ALL, minModRevision: 2, maxModRevision: 4 });
    expect(byMod.result.kvs.map((kv) => kv.key)).toEqual(["b", "c", "d"]);
    expect(byMod.result.count).toBe(5);
    const byCreate = await backend.range("a", { ...ALL, minCreateRevision: 4 });
    expect([byCreate.result.kvs.map((kv) => kv.key), byCreate.result.count]).toEqual([["d", "e"], 5]);
    const byMaxCreate = await backend.range("a", { ...ALL, maxCreateRevision: 2 });
    expect([byMaxCreate.result.kvs.map((kv) => kv.key), byMaxCreate.result.count]).toEqual([["a", "b"], 5]);
    const filteredAndLimited = await backend.range("a", { ...ALL, minModRevision: 2, limit: 3 });
    expect([filteredAndLimited.result.kvs.map((kv) => kv.key), filteredAndLimited.result.more]).toEqual([["b", "c", "d"], true]);
  });

  test("keys_only returns kvs without values; count_only returns only the count", async () => {
    const keysOnly = await backend.range("b", { rangeEnd: "d", keysOnly: true });
    expect(keysOnly.result.kvs.map(kvOf)).toEqual([
      { key: "b", create: 2, mod: 2, version: 1, value: "", lease: 0 },
      { key: "c", create: 3, mod: 3, version: 1, value: "", lease: 0 },
    ]);
    const countOnly = await backend.range("a", { ...ALL, countOnly: true });
    expect([countOnly.result.kvs, countOnly.result.count, countOnly.result.more]).toEqual([[], 5, false]);
  });

  test("count_only with a limit reports more: false (etcd returns no kvs, so nothing was cut)", async () => {
    const countOnly = await backend.range("a", { ...ALL, countOnly: true, limit: 2 });
    expect([countOnly.result.kvs, countOnly.result.count, countOnly.result.more]).toEqual([[], 5, false]);
  });

  test("reads at an older revision; compacted and future revisions fail", async () => {
    await backend.put("a", "changed");
    expect(text((await backend.range("a", { revision: 5 })).result.kvs[0].value)).toBe("1");
    backend.executor.onCompact(3);
    expect((await backend.range("c", { revision: 3 })).result.count).toBe(1);
    expect(await errorCode(backend.range("a", { revision: 2 }))).toBe("Compacted");
    expect(await errorCode(backend.range("a", { revision: 7 }))).toBe("FutureRevision");
  });
});

describe("Range sorting", () => {
  /*
   * Writes, one per revision: k3, k1, k2, k3, k3, k1; final values k1 "c", k2 "b", k3 "a". So:
   *   k1: create 2, mod 6, version 2, value "c"
   *   k2: create 3, mod 3, version 1, value "b"
   *   k3: create 1, mod 5, version 3, value "a"
   * and each target orders the three keys differently.
   */
  const ASCENDING: Record<SortTarget, string[]> = {
    KEY: ["k1", "k2", "k3"],
    CREATE: ["k3", "k1", "k2"],
    MOD: ["k2", "k3", "k1"],
    VERSION: ["k2", "k1", "k3"],
    VALUE: ["k3", "k2", "k1"],
  };
  beforeEach(async () => {
    await backend.putAll([["k3", "x"], ["k1", "x"], ["k2", "b"], ["k3", "x"], ["k3", "a"], ["k1", "c"]]);
  });
  const sortedKeys = async (sortTarget: SortTarget, sortOrder: "NONE" | "ASCEND" | "DESCEND", limit = 0) =>
    (await backend.range("k", { rangeEnd: "l", sortTarget, sortOrder, limit })).result.kvs.map((kv) => kv.key);

  for (const target of Object.keys(ASCENDING) as SortTarget[]) {
    test(`sort by ${target}, ascending and descending`, async () => {
      expect(await sortedKeys(target, "ASCEND")).toEqual(ASCENDING[target]);
      expect(await sortedKeys(target, "DESCEND")).toEqual([...ASCENDING[target]].reverse());
    });
  }

  test("order NONE is key order for KEY and ascending for any other target", async () => {
    expect(await sortedKeys("KEY", "NONE")).toEqual(ASCENDING.KEY);
    for (const target of ["CREATE", "MOD", "VERSION", "VALUE"] as SortTarget[]) expect(await sortedKeys(target, "NONE")).toEqual(ASCENDING[target]);
  });

  test("limit applies after sorting", async () => {
    expect(await sortedKeys("MOD", "DESCEND", 2)).toEqual(["k1", "k3"]);
  });

  test("ties stay in key order in both directions (as etcd 3.4 answers)", async () => {
    await backend.txn({ success: ["t3", "t1", "t2"].map((k) => op.put(k, "")) });
    const tied = async (sortTarget: SortTarget, sortOrder: "ASCEND" | "DESCEND") =>
      (await backend.range("t", { rangeEnd: "u", sortTarget, sortOrder })).result.kvs.map((kv) => kv.key);
    expect(await tied("MOD", "DESCEND")).toEqual(["t1", "t2", "t3"]);
    expect(await tied("VALUE", "DESCEND")).toEqual(["t1", "t2", "t3"]);
    expect(await tied("MOD", "ASCEND")).toEqual(["t1", "t2", "t3"]);
    expect(await tied("KEY", "DESCEND")).toEqual(["t3", "t2", "t1"]);
  });
});

describe("hashKV", () => {
  test("every key before an empty value counts (an empty array without a backing store, as postMessage and Level give)", () => {
    const hashWith = (first: string): number => {
      const mvcc = new MvccStore();
      mvcc.apply(1, [{ key: "a" as KeyString, value: Buffer.from(first), lease: 0 }]);
      mvcc.apply(2, [{ key: "b" as KeyString, value: new Uint8Array(new ArrayBuffer(0)), lease: 0 }]);
      return hashKV(mvcc, 0).hash;
    };
    expect(hashWith("one")).not.toBe(hashWith("two"));
  });
});

describe("revokeKeys (a revoked lease's keys, deleted by the frontend that holds them)", () => {
  test("deletes, at one revision, exactly the keys still attached to the lease", async () => {
    backend.executor.onLeases([{ id: 7, exists: true }, { id: 8, exists: true }]);
    await backend.put("a", "1", { lease: 7 });
    await backend.put("b", "2", { lease: 7 });
    await backend.put("moved", "3", { lease: 7 });
    await backend.put("moved", "4", { lease: 8 }); // re-attached to another lease since
    await backend.put("plain", "5"); // never attached
    const before = backend.envelopes;
    const keys = ["a", "b", "moved", "plain", "gone"].map(key);
    const r = await backend.executor.execute({ kind: "revokeKeys", req: { keys, lease: 7 } }, backend.revision);
    expect(r.result).toEqual({ deleted: 2 });
    expect(backend.envelopes).toBe(before + 1); // one write request: one revision
    expect(r.revision).toBe(backend.revision);
    for (const k of ["a", "b"]) expect((await backend.range(k)).result.count).toBe(0);
    expect(kvOf((await backend.range("moved")).result.kvs[0])).toMatchObject({ value: "4", lease: 8 });
    expect((await backend.range("plain")).result.count).toBe(1);
  });

  test("with none of the keys attached any more it writes nothing", async () => {
    backend.executor.onLeases([{ id: 7, exists: true }]);
    await backend.put("a", "1");
    const before = backend.envelopes;
    const r = await backend.executor.execute({ kind: "revokeKeys", req: { keys: [key("a")], lease: 7 } }, backend.revision);
    expect([r.result, backend.envelopes]).toEqual([{ deleted: 0 }, before]);
  });
});
