import { COMPACTION_TRIM_KEYS_PER_TURN, KeyValue, MvccEvent, MvccStore, RANGE_END_ALL, inRange } from "../../src/backend/mvcc";
import { KeyString, keyToString } from "../../src/persist/encoding";
import { RecordReader, Write } from "../../src/persist/records";
import { MergekvError } from "../../src/errors";
import { SeededRandom, chooseSeed } from "../helpers/random";
import { codeOf } from "../helpers/errors";

const key = (text: string) => keyToString(Buffer.from(text, "latin1"));
const put = (k: string, value: string, lease = 0): Write => ({ key: key(k), value: new Uint8Array(Buffer.from(value)), lease });
const del = (k: string): Write => ({ key: key(k), value: null, lease: 0 });
const text = (kv: KeyValue | undefined) => kv && Buffer.from(kv.value).toString();
const summary = (kv: KeyValue | undefined) => kv && { key: kv.key, create: kv.create, mod: kv.mod, version: kv.version, value: text(kv) };


/**
 * Some keys of a revision's writes written again after the others, the
 * other way (as etcd 3.4 lets a Txn): a put then deleted by a later nested
 * Txn, or deleted by a from-key delete and then put.
 */
function withSecondWrites(writes: Write[], random: SeededRandom): Write[] {
  for (const w of [...writes]) {
    if (random.next() < 0.2) writes.push(w.value === null ? { ...w, value: new Uint8Array(Buffer.from(`again${random.below(10)}`)) } : del(w.key));
  }
  return writes;
}

/** A store with writes applied at revisions 1, 2, ... in order. */
function storeWith(...revisions: Write[][]): MvccStore {
  const store = new MvccStore({ trackDirty: true });
  revisions.forEach((writes, i) => store.apply(i + 1, writes));
  return store;
}

describe("revision and version semantics", () => {
  test("a first put has create = mod = its revision and version 1; later puts raise version and mod", () => {
    const store = new MvccStore();
    store.apply(1, [put("other", "x")]);
    store.apply(2, [put("k", "v1")]);
    expect(summary(store.get("k"))).toEqual({ key: "k", create: 2, mod: 2, version: 1, value: "v1" });
    store.apply(3, [put("k", "v2")]);
    store.apply(4, [put("k", "v3")]);
    expect(summary(store.get("k"))).toEqual({ key: "k", create: 2, mod: 4, version: 3, value: "v3" });
  });

  test("a delete resets the key; a re-create starts over at version 1", () => {
    const store = storeWith([put("k", "a")], [put("k", "b")], [del("k")], [put("k", "c")]);
    expect(store.get("k", 3)).toBeUndefined();
    expect(summary(store.get("k"))).toEqual({ key: "k", create: 4, mod: 4, version: 1, value: "c" });
  });

  test("apply returns etcd's events: put with prev, delete with key and mod only", () => {
    const store = storeWith([put("k", "a", 7)]);
    const [update] = store.apply(2, [put("k", "b")]);
    expect(update.type).toBe("put");
    expect(summary(update.kv)).toEqual({ key: "k", create: 1, mod: 2, version: 2, value: "b" });
    expect(summary(update.prev)).toEqual({ key: "k", create: 1, mod: 1, version: 1, value: "a" });
    expect(update.prev?.lease).toBe(7);
    const [removal] = store.apply(3, [del("k")]);
    expect(removal.type).toBe("delete");
    expect(summary(removal.kv)).toEqual({ key: "k", create: 0, mod: 3, version: 0, value: "" });
    expect(text(removal.prev)).toBe("b");
  });

  test("deleting an absent key is no event, but the revision still advances", () => {
    const store = storeWith([put("k", "a")]);
    expect(store.apply(2, [del("missing")])).toEqual([]);
    expect(store.rev).toBe(2);
    expect([...store.keys()]).toEqual(["k"]);
  });

  test("get at older revisions sees the value of that time", () => {
    const store = storeWith([put("k", "a")], [put("j", "x")], [put("k", "b")], [del("k")]);
    expect(store.get("k", 1)?.mod).toBe(1);
    expect(text(store.get("k", 2))).toBe("a");
    expect(text(store.get("k", 3))).toBe("b");
    expect(store.get("k", 4)).toBeUndefined();
    expect(store.get("j", 1)).toBeUndefined();
  });
});

describe("range", () => {
  const store = storeWith([put("a", "1"), put("b", "2"), put("b\x00", "3"), put("c", "4"), put("\xff", "5")], [del("c")]);
  const keysOf = (start: string, end: string, rev = 0) => [...store.range(start, end, rev)].map((kv) => kv.key);

  test('range_end "" is the key alone', () => {
    expect(keysOf("b", "")).toEqual(["b"]);
    expect(keysOf("bb", "")).toEqual([]);
  });

  test('range_end "\\0" is every key from the key on, in byte order', () => {
    expect(keysOf("b", RANGE_END_ALL)).toEqual(["b", "b\x00", "\xff"]);
    expect(keysOf("\x00", RANGE_END_ALL)).toEqual(["a", "b", "b\x00", "\xff"]);
  });

  test("a normal range_end is exclusive; an end at or before the key is empty", () => {
    expect(keysOf("a", "c")).toEqual(["a", "b", "b\x00"]);
    expect(keysOf("a", "b")).toEqual(["a"]);
    expect(keysOf("b", "b")).toEqual([]);
    expect(keysOf("c", "a")).toEqual([]);
  });

  test("range at an older revision includes keys deleted since", () => {
    expect(keysOf("b", "d", 1)).toEqual(["b", "b\x00", "c"]);
    expect(store.liveKeys("a", RANGE_END_ALL)).toEqual(["a", "b", "b\x00", "\xff"]);
  });
});

describe("compaction", () => {
  test("reading at exactly compactRev works, below is Compacted, beyond rev is FutureRevision", () => {
    const store = storeWith([put("k", "a")], [put("k", "b")], [put("k", "c")], [put("j", "d")]);
    store.compact(3);
    expect(store.checkReadable(3)).toBe(3);
    expect(store.checkReadable(4)).toBe(4);
    expect(store.checkReadable(0)).toBe(4);
    expect(codeOf(() => store.checkReadable(2))).toBe("Compacted");
    expect(codeOf(() => store.checkReadable(5))).toBe("FutureRevision");
    expect(text(store.get("k", 3))).toBe("c");
  });

  test("compacting at or below the compact revision is Compacted; beyond rev is FutureRevision", () => {
    const store = storeWith([put("k", "a")], [put("k", "b")], [put("k", "c")]);
    store.compact(2);
    expect(codeOf(() => store.compact(2))).toBe("Compacted");
    expect(codeOf(() => store.compact(1))).toBe("Compacted");
    expect(codeOf(() => store.compact(4))).toBe("FutureRevision");
    expect(store.compactRev).toBe(2);
  });

  test("the value live at compactRev survives however old; keys deleted before it are dropped", () => {
    const store = storeWith([put("old", "o"), put("gone", "g")], [del("gone")], [put("late", "l")], [put("x", "x")], [del("late")]);
    store.compact(4);
    expect(summary(store.get("old", 4))).toEqual({ key: "old", create: 1, mod: 1, version: 1, value: "o" });
    expect(text(store.get("late", 4))).toBe("l");
    expect(store.get("late", 5)).toBeUndefined();
    expect([...store.keys()]).toEqual(["late", "old", "x"]);
  });

  test("a compaction that drops history marks the keys dirty (the snapshot must rewrite them)", () => {
    const store = storeWith([put("k", "a")], [put("k", "b")], [put("j", "c")]);
    store.takeDirty();
    expect(store.compact(2)).toBe(1);
    expect(store.takeDirty()).toEqual(["k"]);
  });
});

describe("compaction a slice per turn (trimSoon)", () => {
  test("reads below fail at once; histories are trimmed COMPACTION_TRIM_KEYS_PER_TURN keys a turn; reads above never change", async () => {
    const store = new MvccStore();
    const keys = Array.from({ length: 2.5 * COMPACTION_TRIM_KEYS_PER_TURN }, (_, i) => `k${String(i).padStart(6, "0")}`);
    store.apply(1, keys.map((k) => put(k, "old")));
    store.apply(2, keys.map((k) => put(k, "new")));
    store.apply(3, [put("z", "later")]);
    const entries = (k: string) => new RecordReader(store.encodeHistory(k)!, k).u32();
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    store.setCompactRev(2);
    store.trimSoon();
    expect(codeOf(() => store.checkReadable(1))).toBe("Compacted");
    const [first, last] = [keys[0], keys[keys.length - 1]];
    expect([entries(first), entries(last)]).toEqual([2, 2]);
    await turn();
    expect([entries(first), entries(keys[COMPACTION_TRIM_KEYS_PER_TURN - 1]), entries(keys[COMPACTION_TRIM_KEYS_PER_TURN]), entries(last)]).toEqual([1, 1, 2, 2]);
    expect(text(store.get(last, 2))).toBe("new");
    await turn();
    await turn();
    expect([entries(first), entries(last)]).toEqual([1, 1]);
    expect(store.trim(COMPACTION_TRIM_KEYS_PER_TURN)).toEqual({ touched: 0, done: true });
    expect([text(store.get(last, 2)), text(store.get("z"))]).toEqual(["new", "later"]);
  });
});

describe("history encoding", () => {
  // Revision 6 writes j, then k twice (put, then deleted by a later op of its Txn), then i.
  const revisions = [[put("k", "a", 3)], [put("j", "x")], [put("k", "b")], [del("k")], [put("k", "c")], [put("j", "y"), put("k", "d"), del("k"), put("i", "z")], [del("j")]];
  const KEYS = ["i", "j", "k"];

  test("encodeHistory and loadHistory round-trip every key's answers and every event, in write order", () => {
    const original = storeWith(...revisions);
    const restored = new MvccStore({ byRevision: true });
    restored.indexFrom(0);
    for (const k of original.keys()) restored.loadHistory(k as KeyString, original.encodeHistory(k)!, `history of ${k}`);
    expect(restored.rev).toBe(original.rev);
    for (let rev = 1; rev <= original.rev; rev++) {
      for (const k of KEYS) expect(restored.get(k, rev)).toEqual(original.get(k, rev));
    }
    const brief = (e: MvccEvent) => [e.type, e.kv.key, e.kv.mod, text(e.prev)];
    const events = original.eventsBetween(RANGE_END_ALL, RANGE_END_ALL, 1, original.rev).map(brief);
    expect(events.filter((e) => e[2] === 6)).toEqual([["put", "j", 6, "x"], ["put", "k", 6, "c"], ["delete", "k", 6, "c"], ["put", "i", 6, undefined]]);
    expect(restored.eventsBetween(RANGE_END_ALL, RANGE_END_ALL, 1, original.rev).map(brief)).toEqual(events); // by revision, from the histories
    expect(restored.eventsBetween("k", "", 1, original.rev).map(brief)).toEqual(events.filter((e) => e[1] === "k")); // one key's own history
    expect(original.encodeHistory("never")).toBeUndefined();
  });

  test("a history none of whose writes had another before it in its revision encodes as before subs were kept; one that did keeps them", () => {
    const store = storeWith(...revisions);
    const entryBytes = (value: string) => 4 * 8 + 1 + 4 + value.length;
    expect(store.encodeHistory("j")!.length).toBe(4 + entryBytes("x") + entryBytes("y") + entryBytes(""));
    const k = store.encodeHistory("k")!;
    expect(k.length).toBe(4 + ["a", "b", "", "c", "d", ""].reduce((n, v) => n + entryBytes(v), 0) + 1 + 6 * 4);
    const corrupt = Buffer.from(k);
    corrupt[k.length - 6 * 4 - 1] = 9; // not the subs' tag
    expect(codeOf(() => new MvccStore().loadHistory(key("k"), corrupt, "k"))).toBe("Corrupt");
    const outOfOrder = Buffer.from(k);
    outOfOrder.writeUInt32BE(1, k.length - 4); // the delete at revision 6 given the sub of the put before it
    expect(codeOf(() => new MvccStore().loadHistory(key("k"), outOfOrder, "k"))).toBe("Corrupt");
  });

  test("replaying records over a restored history changes nothing (idempotent)", () => {
    const original = storeWith(...revisions);
    const restored = new MvccStore();
    for (const k of original.keys()) restored.loadHistory(k as KeyString, original.encodeHistory(k)!, k);
    revisions.forEach((writes, i) => expect(restored.apply(i + 1, writes, true)).toEqual([]));
    for (const k of KEYS) expect(restored.encodeHistory(k)).toEqual(original.encodeHistory(k));
  });

  test("replaying over a history restored in the middle of a revision's writes applies the rest (by revision and sub)", () => {
    const upTo5 = storeWith(...revisions.slice(0, 5));
    const restored = new MvccStore();
    for (const k of upTo5.keys()) restored.loadHistory(k as KeyString, upTo5.encodeHistory(k)!, k);
    restored.apply(6, revisions[5].slice(0, 2), true); // j and k's put
    expect(restored.apply(6, revisions[5], true).map((e) => [e.type, e.kv.key])).toEqual([["delete", "k"], ["put", "i"]]);
    expect(restored.apply(7, revisions[6], true).map((e) => [e.type, e.kv.key])).toEqual([["delete", "j"]]);
    const original = storeWith(...revisions);
    for (const k of KEYS) expect(restored.encodeHistory(k)).toEqual(original.encodeHistory(k));
  });

  test("loadHistory rejects truncated, empty and out-of-order histories as Corrupt", () => {
    const bytes = storeWith(...revisions).encodeHistory("k")!;
    const store = new MvccStore();
    expect(codeOf(() => store.loadHistory(key("k"), bytes.subarray(0, bytes.length - 1), "k"))).toBe("Corrupt");
    expect(codeOf(() => store.loadHistory(key("k"), Buffer.alloc(4), "k"))).toBe("Corrupt");
    const swapped = storeWith([put("k", "a")], [put("k", "b")]).encodeHistory("k")!;
    const entryBytes = (swapped.length - 4) / 2;
    const reordered = Buffer.concat([swapped.subarray(0, 4), swapped.subarray(4 + entryBytes), swapped.subarray(4, 4 + entryBytes)]);
    expect(codeOf(() => store.loadHistory(key("k"), reordered, "k"))).toBe("Corrupt");
  });
});

/** The reference: the whole keyspace copied at every revision; etcd's rules written out plainly. */
class ReferenceModel {
  private readonly states: Map<string, KeyValue>[] = [new Map()];
  /** Per revision, the keys it has events for. */
  private readonly written: Set<string>[] = [new Set()];
  compactRev = 0;

  get rev(): number {
    return this.states.length - 1;
  }

  apply(writes: Write[]): MvccEvent[] {
    const rev = this.rev + 1;
    const state = new Map(this.states[this.rev]);
    const events: MvccEvent[] = [];
    for (const w of writes) {
      const live = state.get(w.key);
      const prev = this.states[this.rev].get(w.key); // etcd's prev: the value before the revision
      if (w.value === null) {
        if (!live) continue;
        state.delete(w.key);
        events.push({ type: "delete", kv: { key: w.key, create: 0, mod: rev, version: 0, value: new Uint8Array(0), lease: 0 }, prev });
      } else {
        const kv = { key: w.key, create: live ? live.create : rev, mod: rev, version: live ? live.version + 1 : 1, value: w.value, lease: w.lease };
        state.set(w.key, kv);
        events.push({ type: "put", kv, prev: kv.create === rev ? undefined : prev }); // a create has none (etcd)
      }
    }
    this.states.push(state);
    this.written.push(new Set(events.map((e) => e.kv.key)));
    return events;
  }

  /** etcd's answer to a range read: the kvs, or the error code. */
  read(start: string, end: string, rev: number): KeyValue[] | string {
    if (rev > this.rev) return "FutureRevision";
    if (rev !== 0 && rev < this.compactRev) return "Compacted";
    const inRange = (k: string) => (end === "" ? k === start : end === RANGE_END_ALL ? k >= start : k >= start && k < end);
    return [...this.states[rev || this.rev].values()].filter((kv) => inRange(kv.key)).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  compact(rev: number): string | undefined {
    if (rev <= this.compactRev) return "Compacted";
    if (rev > this.rev) return "FutureRevision";
    this.compactRev = rev;
    return undefined;
  }

  /**
   * Keys that must keep history: live at some readable revision, or with an
   * event at one (a watch from there sees it: a delete at the compact
   * revision, a key put and deleted in one revision).
   */
  retainedKeys(): string[] {
    const keys = new Set<string>();
    for (let rev = this.compactRev; rev <= this.rev; rev++) {
      for (const k of this.states[rev].keys()) keys.add(k);
      for (const k of this.written[rev]) keys.add(k);
    }
    return [...keys].sort();
  }
}

describe("MvccStore against a reference model", () => {
  const KEYS = ["a", "a\x00", "ab", "b", "c", "\xff"];
  const ENDS = ["", RANGE_END_ALL, "b", "c", "\xff", "a\x00"];

  function randomWrites(random: SeededRandom): Write[] {
    const keys = KEYS.filter(() => random.next() < 0.35);
    const writes = keys.map((k) => (random.next() < 0.65 ? put(k, `v${random.below(1000)}`, random.below(3)) : del(k)));
    return withSecondWrites(writes, random);
  }

  function checkRead(store: MvccStore, model: ReferenceModel, random: SeededRandom): void {
    const start = random.pick(KEYS), end = random.pick(ENDS), rev = random.below(model.rev + 3);
    const expected = model.read(start, end, rev);
    let actual: KeyValue[] | string;
    try {
      actual = [...store.range(start, end, store.checkReadable(rev))];
    } catch (e) {
      actual = (e as MergekvError).code;
    }
    expect([start, end, rev, actual]).toEqual([start, end, rev, expected]);
  }

  test("random puts, deletes and compactions read back as the model says", () => {
    const seed = chooseSeed("mvcc model");
    const random = new SeededRandom(seed);
    for (let run = 0; run < 20; run++) {
      const store = new MvccStore();
      const model = new ReferenceModel();
      for (let step = 0; step < 150; step++) {
        const roll = random.next();
        if (roll < 0.75) {
          const writes = randomWrites(random);
          expect(store.apply(model.rev + 1, writes)).toEqual(model.apply(writes));
        } else if (roll < 0.85) {
          const rev = random.below(model.rev + 3);
          // At once, or (as the server does) the compact revision now and the histories a few keys at a time.
          const compact = random.next() < 0.5 ? () => store.compact(rev) : () => store.setCompactRev(rev);
          expect(codeOf(compact)).toBe(model.compact(rev));
        }
        store.trim(random.below(3));
        for (let read = 0; read < 3; read++) checkRead(store, model, random);
      }
      expect(store.rev).toBe(model.rev);
      while (!store.trim(1).done);
      expect([...store.keys()]).toEqual(model.retainedKeys());
    }
  });
});

describe("history by revision (eventsBetween, a watch's catch-up)", () => {
  const KEYS = ["a", "a\x00", "ab", "b", "c", "\xff"];
  const ENDS = ["", RANGE_END_ALL, "b", "c", "\xff", "a\x00"];
  /** What a test compares of an event: the event, and its prev's revision and value if it has one. */
  const brief = (e: MvccEvent) => ({ type: e.type, key: e.kv.key, mod: e.kv.mod, value: text(e.kv), ...(e.prev ? { prev: [e.prev.mod, text(e.prev)] } : {}) });

  /** What recovery does (Replica.bootstrap): index from the compact revision, load every history, compact. */
  function restored(from: MvccStore): MvccStore {
    const store = new MvccStore({ byRevision: true });
    store.indexFrom(from.compactRev);
    for (const k of from.keys()) store.loadHistory(k as KeyString, from.encodeHistory(k)!, k);
    store.rev = from.rev;
    if (from.compactRev > 0) store.compact(from.compactRev);
    return store;
  }

  test("indexed by revision, from keys' histories, and as the model's events say: the same events, with compactions (trimmed in steps) and restarts", () => {
    const seed = chooseSeed("mvcc events by revision");
    const random = new SeededRandom(seed);
    for (let run = 0; run < 20; run++) {
      let indexed = new MvccStore({ byRevision: true });
      const plain = new MvccStore();
      const model = new ReferenceModel();
      const log: MvccEvent[] = [];
      for (let step = 0; step < 150; step++) {
        const roll = random.next();
        if (roll < 0.75) {
          const keys = KEYS.filter(() => random.next() < 0.35).sort(() => random.next() - 0.5); // a Txn's keys in any order
          const writes = keys.map((k) => (random.next() < 0.65 ? put(k, `v${random.below(1000)}`) : del(k)));
          withSecondWrites(writes, random);
          const rev = model.rev + 1;
          log.push(...model.apply(writes));
          indexed.apply(rev, writes);
          plain.apply(rev, writes);
        } else if (roll < 0.85 && model.rev > model.compactRev) {
          const rev = model.compactRev + 1 + random.below(model.rev - model.compactRev);
          model.compact(rev);
          indexed.setCompactRev(rev); // histories trimmed a few keys per step, below
          plain.compact(rev);
        } else if (roll < 0.9) {
          indexed = restored(indexed);
        }
        indexed.trim(random.below(3));
        for (let read = 0; read < 3; read++) {
          const start = random.pick(KEYS), end = random.pick(ENDS);
          const from = model.compactRev + random.below(model.rev - model.compactRev + 2);
          const to = from + random.below(20);
          const expected = log
            .filter((e) => e.kv.mod >= from && e.kv.mod <= to && inRange(e.kv.key, start, end))
            .sort((a, b) => a.kv.mod - b.kv.mod) // stable: each revision's in write order
            // A prev from before the compact revision is compacted away.
            .map((e) => brief(e.kv.mod === model.compactRev ? { type: e.type, kv: e.kv } : e));
          const what = { run, step, start, end, from, to };
          expect({ ...what, events: indexed.eventsBetween(start, end, from, to).map(brief) }).toEqual({ ...what, events: expected });
          expect({ ...what, events: plain.eventsBetween(start, end, from, to).map(brief) }).toEqual({ ...what, events: expected });
        }
      }
    }
  });

  test("a range is read by revision: its keys are not walked, and only the keys of those revisions are looked up", () => {
    const store = new MvccStore({ byRevision: true });
    const many: Write[] = [];
    for (let i = 0; i < 20_000; i++) many.push(put(`a/${String(i).padStart(5, "0")}`, "x"));
    store.apply(1, many);
    for (let rev = 2; rev <= 2_001; rev++) store.apply(rev, [put(`b/${rev % 7}`, `v${rev}`)]);
    store.apply(2_002, [put("a/00007", "y"), put("a/00003", "y")]);
    const index = Object.getPrototypeOf((store as unknown as { index: object }).index) as { entries: () => unknown; get: () => unknown };
    const entries = jest.spyOn(index, "entries");
    const get = jest.spyOn(index, "get");
    try {
      const events = store.eventsBetween(key("a/"), key("a0"), 2, 2_002);
      expect(events.map((e) => [e.kv.key, e.kv.mod, e.prev?.mod])).toEqual([[key("a/00007"), 2_002, 1], [key("a/00003"), 2_002, 1]]); // as written
      expect(entries).not.toHaveBeenCalled();
      expect(get).toHaveBeenCalledTimes(2);
    } finally {
      entries.mockRestore();
      get.mockRestore();
    }
  });
});
