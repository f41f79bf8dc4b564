import { randomBytes } from "node:crypto";
import fc from "fast-check";
import * as A from "@automerge/automerge";
import { BUCKET_COUNT, BucketSet, COLD_PENDING_MAX, bucketOf } from "../../src/backend/buckets";
import { LENT_KEPT_MAX } from "../../src/backend/loans";
import { FOLD_AT, FOLD_CHUNK_BYTES_MAX, Folder, foldDocument } from "../../src/backend/stored-docs";
import { ActorId, KeyString, keyToString } from "../../src/persist/encoding";
import { BucketChange } from "../../src/persist/records";
import { MergekvError } from "../../src/errors";
import { assertProperty } from "../helpers/random";

const ACTOR_A = "aa".repeat(16) as ActorId;
const ACTOR_B = "bb".repeat(16) as ActorId;
const ACTOR_C = "cc".repeat(16) as ActorId;
const KEY_POOL = ["a", "b", "c", "d", "e", "f", "g", "h"].map((k) => keyToString(Buffer.from(k)));

const value = (text: string) => new Uint8Array(Buffer.from(text));
const read = (set: BucketSet, key: KeyString) => {
  const v = set.get(key);
  return v && Buffer.from(v).toString();
};
const snapshotOf = (set: BucketSet) => KEY_POOL.map((k) => read(set, k));

/** The first `count` keys "k0", "k1", ... that land in distinct buckets. */
function keysInDistinctBuckets(count: number): KeyString[] {
  const byBucket = new Map<number, KeyString>();
  for (let i = 0; byBucket.size < count; i++) {
    const k = keyToString(Buffer.from(`k${i}`));
    if (!byBucket.has(bucketOf(k))) byBucket.set(bucketOf(k), k);
  }
  return [...byBucket.values()];
}

/** A key other than `key` in the same bucket. */
function sameBucketAs(key: KeyString): KeyString {
  for (let i = 0; ; i++) {
    const k = keyToString(Buffer.from(`same${i}`));
    if (k !== key && bucketOf(k) === bucketOf(key)) return k;
  }
}

describe("bucketOf", () => {
  test("is 32-bit FNV-1a of the key bytes modulo BUCKET_COUNT (published FNV test vectors)", () => {
    expect(BUCKET_COUNT).toBe(16_384); // part of the on-disk layout: changing it needs a migration
    expect(bucketOf("")).toBe(0x811c9dc5 % BUCKET_COUNT);
    expect(bucketOf("a")).toBe(0xe40c292c % BUCKET_COUNT);
    expect(bucketOf("foobar")).toBe(0xbf9cf968 % BUCKET_COUNT);
  });

  test("always lands inside [0, BUCKET_COUNT)", () => {
    assertProperty("bucketOf range", fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const b = bucketOf(keyToString(bytes));
      expect(Number.isInteger(b) && b >= 0 && b < BUCKET_COUNT).toBe(true);
    }));
  });
});

describe("local commits", () => {
  test("a Txn-like commit over several buckets gives one change per touched bucket", () => {
    const [k1, k2, k3] = keysInDistinctBuckets(3);
    const k1Neighbour = sameBucketAs(k1);
    const set = new BucketSet(ACTOR_A);
    set.put(k1, value("1"));
    set.put(k1Neighbour, value("1b"));
    set.put(k2, value("2"));
    set.put(k3, value("3"));
    set.delete(k3);
    const changes = set.commit();
    expect(changes.map((c) => c.bucket).sort()).toEqual([k1, k2, k3].map(bucketOf).sort());
    const replica = new BucketSet(ACTOR_B);
    replica.applyRemote(changes);
    expect([k1, k1Neighbour, k2, k3].map((k) => read(replica, k))).toEqual(["1", "1b", "2", undefined]);
  });

  test("a commit with nothing written gives no changes, and the next commit starts afresh", () => {
    const set = new BucketSet(ACTOR_A);
    expect(set.commit()).toEqual([]);
    const [k1, k2] = keysInDistinctBuckets(2);
    set.put(k1, value("x"));
    expect(set.commit().map((c) => c.bucket)).toEqual([bucketOf(k1)]);
    set.put(k2, value("y"));
    expect(set.commit().map((c) => c.bucket)).toEqual([bucketOf(k2)]);
  });
});

describe("convergence", () => {
  test("a change that arrives before its dependency waits for it", () => {
    const author = new BucketSet(ACTOR_A);
    author.put(KEY_POOL[0], value("first"));
    const first = author.commit();
    author.put(KEY_POOL[0], value("second"));
    const second = author.commit();
    const replica = new BucketSet(ACTOR_B);
    replica.applyRemote(second);
    expect(replica.missingDeps()).toBeGreaterThan(0);
    expect(read(replica, KEY_POOL[0])).toBeUndefined();
    replica.applyRemote(first);
    expect(replica.missingDeps()).toBe(0);
    expect(read(replica, KEY_POOL[0])).toBe("second");
  });

  type Operation = { key: number; value: string | null };
  const commitArbitrary = fc.array(fc.record({ key: fc.nat(KEY_POOL.length - 1), value: fc.option(fc.string({ maxLength: 4 }), { nil: null }) }), { minLength: 1, maxLength: 4 });
  const historyArbitrary = fc.array(commitArbitrary, { maxLength: 6 });

  function author(set: BucketSet, commits: Operation[][]): BucketChange[][] {
    return commits.map((ops) => {
      for (const op of ops) {
        if (op.value === null) set.delete(KEY_POOL[op.key]);
        else set.put(KEY_POOL[op.key], value(op.value));
      }
      return set.commit();
    });
  }

  /** Delivers every change, one applyRemote call each, in the order `ranks` gives. */
  function deliver(to: BucketSet, changes: BucketChange[], ranks: number[]): void {
    const order = changes.map((c, i) => ({ c, rank: ranks[i % Math.max(ranks.length, 1)] ?? 0, i }));
    order.sort((x, y) => x.rank - y.rank || x.i - y.i);
    for (const { c } of order) to.applyRemote([c]);
  }

  test("replicas with different actors converge after exchanging changes in any order", () => {
    const scenario = fc.tuple(historyArbitrary, historyArbitrary, fc.array(fc.nat(), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }));
    assertProperty("bucket convergence", fc.property(scenario, ([commitsA, commitsB, ranksB, ranksC]) => {
      const a = new BucketSet(ACTOR_A);
      const b = new BucketSet(ACTOR_B);
      const observer = new BucketSet(ACTOR_C);
      const fromA = author(a, commitsA).flat();
      const fromB = author(b, commitsB).flat();
      a.applyRemote(fromB);
      deliver(b, fromA, ranksB);
      deliver(observer, fromA.concat(fromB), ranksC);
      for (const set of [a, b, observer]) expect(set.missingDeps()).toBe(0);
      expect(snapshotOf(b)).toEqual(snapshotOf(a));
      expect(snapshotOf(observer)).toEqual(snapshotOf(a));
    }), { numRuns: 25 });
  });

  test("concurrent writes of one key resolve to the same value everywhere", () => {
    const a = new BucketSet(ACTOR_A);
    const b = new BucketSet(ACTOR_B);
    a.put(KEY_POOL[0], value("from a"));
    b.put(KEY_POOL[0], value("from b"));
    const fromA = a.commit();
    const fromB = b.commit();
    a.applyRemote(fromB);
    b.applyRemote(fromA);
    expect(read(a, KEY_POOL[0])).toBe(read(b, KEY_POOL[0]));
    expect(["from a", "from b"]).toContain(read(a, KEY_POOL[0]));
  });
});

describe("save and load", () => {
  test("saved buckets load into a fresh set with the same contents, which keeps merging", () => {
    const original = new BucketSet(ACTOR_A);
    KEY_POOL.forEach((k, i) => original.put(k, value(`v${i}`)));
    original.delete(KEY_POOL[1]);
    original.commit();
    const loaded = new BucketSet(ACTOR_C);
    for (const bucket of original.present()) loaded.load(bucket, original.save(bucket)!);
    expect([...loaded.present()]).toEqual([...original.present()]);
    expect(snapshotOf(loaded)).toEqual(snapshotOf(original));
    original.put(KEY_POOL[2], value("later"));
    loaded.applyRemote(original.commit());
    expect(read(loaded, KEY_POOL[2])).toBe("later");
    const present = new Set(original.present());
    const emptyBucket = Array.from({ length: BUCKET_COUNT }, (_, b) => b).find((b) => !present.has(b))!;
    expect(original.save(emptyBucket)).toBeUndefined();
  });

  test("bytes that are not an Automerge document are Corrupt, naming the bucket, when first used", () => {
    const set = new BucketSet(ACTOR_A);
    set.load(17, new Uint8Array(Buffer.from("not a document"))); // documents load lazily
    expect(set.loaded).toBe(0);
    const keyInBucket = KEY_POOL.find((k) => bucketOf(k) === 17) ?? findKeyInBucket(17);
    let caught: unknown;
    try {
      set.get(keyInBucket);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(MergekvError);
    expect((caught as MergekvError).code).toBe("Corrupt");
    expect((caught as MergekvError).message).toContain("bucket 17");
  });
});

function findKeyInBucket(bucket: number): KeyString {
  for (let i = 0; ; i++) if (bucketOf(`probe-${i}`) === bucket) return `probe-${i}` as KeyString;
}

describe("lazy loading", () => {
  test("a loaded snapshot stays unloaded until used, queues changes, and saves unchanged bytes as they are", () => {
    const original = new BucketSet(ACTOR_A);
    const key = findKeyInBucket(5);
    original.put(key, value("one"));
    original.commit();
    const bytes = original.save(5)!;
    const lazy = new BucketSet(ACTOR_B);
    lazy.load(5, bytes);
    expect(lazy.loaded).toBe(0);
    expect(lazy.save(5)).toBe(bytes); // nothing queued: the same bytes, no load
    original.put(key, value("two"));
    lazy.applyRemote(original.commit());
    expect(lazy.loaded).toBe(0); // queued, not applied
    expect(read(lazy, key)).toBe("two"); // first use loads it and applies the queue
    expect(lazy.loaded).toBe(1);
  });

  test("a cold document is loaded once its queue would pass COLD_PENDING_MAX", () => {
    const original = new BucketSet(ACTOR_A);
    const key = findKeyInBucket(9);
    original.put(key, value("0"));
    original.commit();
    const lazy = new BucketSet(ACTOR_B);
    lazy.load(9, original.save(9)!);
    for (let i = 1; i <= COLD_PENDING_MAX; i++) {
      original.put(key, value(String(i)));
      lazy.applyRemote(original.commit());
    }
    expect(lazy.loaded).toBe(0);
    original.put(key, value("last"));
    lazy.applyRemote(original.commit());
    expect(lazy.loaded).toBe(1);
    expect(read(lazy, key)).toBe("last");
  });
});

describe("others' changes to loaded documents (resident mode)", () => {
  const nextTurn = () => new Promise((r) => setImmediate(r));

  test("are queued, applied a slice per turn in order, and at once when a document is used", async () => {
    const keys = keysInDistinctBuckets(1_500);
    const author = new BucketSet(ACTOR_A);
    const follower = new BucketSet(ACTOR_B);
    for (const k of keys) author.put(k, value("first"));
    follower.applyRemote(author.commit()); // nothing loaded yet: these load the documents
    expect(follower.queuedRemote).toBe(0);
    for (const k of keys) author.put(k, value("second"));
    const second = author.commit();
    for (const k of keys) author.put(k, value("third"));
    follower.applyRemote(second);
    follower.applyRemote(author.commit());
    expect(follower.queuedRemote).toBe(keys.length); // nothing applied in the call
    // Used before its turn: the document takes its queue first, in order.
    expect(read(follower, keys[7])).toBe("third");
    expect(follower.queuedRemote).toBe(keys.length - 1);
    follower.put(keys[8], value("local"));
    const [local] = follower.commit();
    expect(local.deps).toEqual(author.heads(bucketOf(keys[8]))); // the write depends on both remote changes
    let turns = 0;
    while (follower.queuedRemote > 0) {
      await nextTurn();
      turns++;
    }
    expect(turns).toBeGreaterThan(1); // a slice per turn, not all at once
    for (const k of keys.slice(9)) expect(read(follower, k)).toBe("third");
    expect(follower.missingDeps()).toBe(0);
  });

  test("a loaded document takes its queue at once when the queue would pass COLD_PENDING_MAX", () => {
    const [key] = keysInDistinctBuckets(1);
    const author = new BucketSet(ACTOR_A);
    const follower = new BucketSet(ACTOR_B);
    author.put(key, value("0"));
    follower.applyRemote(author.commit());
    for (let i = 1; i <= COLD_PENDING_MAX; i++) {
      author.put(key, value(String(i)));
      follower.applyRemote(author.commit());
    }
    expect(follower.queuedRemote).toBe(1);
    author.put(key, value("last"));
    follower.applyRemote(author.commit());
    expect(follower.queuedRemote).toBe(0);
    expect(read(follower, key)).toBe("last");
  });

  test("queued changes survive a snapshot's bytes replacing the document", () => {
    const [key] = keysInDistinctBuckets(1);
    const bucket = bucketOf(key);
    const author = new BucketSet(ACTOR_A);
    const follower = new BucketSet(ACTOR_B);
    author.put(key, value("one"));
    follower.applyRemote(author.commit());
    const older = author.save(bucket)!;
    author.put(key, value("two"));
    follower.applyRemote(author.commit());
    expect(follower.queuedRemote).toBe(1);
    follower.load(bucket, older); // bytes from before the queued change
    expect(follower.queuedRemote).toBe(0);
    expect(read(follower, key)).toBe("two");
  });
});

describe("commits carry their dependencies and hash", () => {
  test("deps are the heads before the change and hash is the change's own, as Automerge decodes them", () => {
    const set = new BucketSet(ACTOR_A);
    const key = findKeyInBucket(3);
    let heads: string[] = [];
    for (const v of ["1", "2", "3"]) {
      set.put(key, value(v));
      set.put(sameBucketAs(key), value(v)); // two writes to one bucket: still one change
      const [change, ...rest] = set.commit();
      expect(rest).toEqual([]);
      const decoded = A.decodeChange(change.bytes);
      expect([change.deps, change.hash]).toEqual([decoded.deps, decoded.hash]);
      expect(change.deps).toEqual(heads);
      heads = [change.hash!];
    }
  });
});

describe("stored mode (the backend)", () => {
  const authorIn = (bucket: number) => {
    const author = new BucketSet(ACTOR_A);
    const key = findKeyInBucket(bucket);
    return { key, write: (v: string) => { author.put(key, value(v)); return author.commit(); } };
  };

  test("applied changes are appended without loading; a read loads, settle stores again", () => {
    const { key, write } = authorIn(11);
    const stored = new BucketSet(ACTOR_B, undefined, false);
    for (let i = 0; i < 5; i++) stored.applyRemote(write(`v${i}`));
    expect([stored.loads, stored.loaded]).toEqual([0, 0]);
    expect(read(stored, key)).toBe("v4");
    expect([stored.loads, stored.loaded]).toEqual([1, 1]);
    stored.settle();
    expect(stored.loaded).toBe(0);
    stored.applyRemote(write("after"));
    expect(stored.loads).toBe(1);
    expect(read(stored, key)).toBe("after");
  });

  test("saved bytes are the document and its chunks joined, and load anywhere", () => {
    const { key, write } = authorIn(12);
    const stored = new BucketSet(ACTOR_B, undefined, false);
    stored.applyRemote(write("one"));
    const first = stored.save(12)!;
    stored.applyRemote(write("two"));
    stored.applyRemote(write("three"));
    const joined = stored.save(12)!;
    expect(joined.byteLength).toBeGreaterThan(first.byteLength);
    expect(stored.loads).toBe(0);
    const fresh = new BucketSet(ACTOR_C);
    fresh.load(12, joined);
    expect(read(fresh, key)).toBe("three");
  });

  test(`chunks are folded into saved bytes at ${FOLD_AT} at first, keeping every value`, () => {
    const { key, write } = authorIn(13);
    const stored = new BucketSet(ACTOR_B, undefined, false);
    for (let i = 0; i < FOLD_AT - 1; i++) stored.applyRemote(write(`v${i}`));
    expect(stored.loads).toBe(0);
    stored.applyRemote(write("folded"));
    expect([stored.loads, stored.loaded]).toEqual([1, 0]); // loaded once to fold, then stored again
    stored.applyRemote(write("next"));
    expect(read(stored, key)).toBe("next");
  });

  test("later folds wait for as many chunks as were folded before: a hot key's folds thin out", () => {
    const { key, write } = authorIn(15);
    const stored = new BucketSet(ACTOR_B, undefined, false);
    const value = "x".repeat(200);
    const foldsAt: number[] = [];
    for (let i = 1; i <= 3_000; i++) {
      const before = stored.loads;
      stored.applyRemote(write(`${i}:${value}`));
      if (stored.loads > before) foldsAt.push(i);
    }
    // Every FOLD_AT would be 46 folds, each loading the whole (growing) history.
    expect(foldsAt).toEqual([64, 128, 256, 512, 1024, 2048]);
    expect(read(stored, key)).toBe(`3000:${value}`);
  });

  test(`chunks fold whenever they weigh ${FOLD_CHUNK_BYTES_MAX} bytes, however many were folded before`, () => {
    const { key, write } = authorIn(16);
    const stored = new BucketSet(ACTOR_B, undefined, false);
    const big = Math.ceil(FOLD_CHUNK_BYTES_MAX / FOLD_AT) + 1_024;
    const foldsAt: number[] = [];
    for (let i = 1; i <= 3 * FOLD_AT; i++) {
      const before = stored.loads;
      stored.applyRemote(write(`${i}:${randomBytes(big / 2).toString("hex")}`)); // incompressible
      if (stored.loads > before) foldsAt.push(i);
    }
    expect(foldsAt).toEqual([FOLD_AT, 2 * FOLD_AT, 3 * FOLD_AT]); // doubling alone would skip the third
    expect(read(stored, key).startsWith(`${3 * FOLD_AT}:`)).toBe(true);
  });

  test("past the set's chunk budget, documents fold every FOLD_AT chunks again", () => {
    const { key, write } = authorIn(17);
    const value = "y".repeat(200);
    const roomy = new BucketSet(ACTOR_B, undefined, false);
    const tight = new BucketSet(ACTOR_B, undefined, false, 1); // any chunk at all is over budget
    const folds = (set: BucketSet, i: number, before: number, at: number[]) => { if (set.loads > before) at.push(i); };
    const roomyAt: number[] = [];
    const tightAt: number[] = [];
    for (let i = 1; i <= 5 * FOLD_AT; i++) {
      const changes = write(`${i}:${value}`);
      const [r, t] = [roomy.loads, tight.loads];
      roomy.applyRemote(changes);
      tight.applyRemote(changes);
      folds(roomy, i, r, roomyAt);
      folds(tight, i, t, tightAt);
    }
    expect(roomyAt).toEqual([FOLD_AT, 2 * FOLD_AT, 4 * FOLD_AT]);
    expect(tightAt).toEqual([1, 2, 3, 4, 5].map((n) => n * FOLD_AT));
    expect(read(tight, key)).toBe(`${5 * FOLD_AT}:${value}`);
    expect(roomy.chunkBytesHeld).toBeGreaterThan(0);
    expect(read(roomy, key)).toBe(`${5 * FOLD_AT}:${value}`);
    expect(roomy.chunkBytesHeld).toBe(0); // loaded to read: its chunks are in the document now
    roomy.settle();
    roomy.applyRemote(write("after"));
    expect(roomy.chunkBytesHeld).toBeGreaterThan(0);
    roomy.save(17);
    expect(roomy.chunkBytesHeld).toBe(0); // joined into the saved bytes
  });

  describe("folds run elsewhere (a Folder)", () => {
    /** A folder that runs each fold when told to, as the fold thread would, later. */
    const deferredFolder = () => {
      const queued: (() => void)[] = [];
      const folder: Folder = (bytes, chunks, done) => { queued.push(() => done(foldDocument(bytes, chunks))); };
      return { folder, queued, runAll: () => { for (const f of queued.splice(0)) f(); } };
    };

    test("a fold done elsewhere replaces the folded chunks; chunks that came meanwhile stay", () => {
      const { key, write } = authorIn(19);
      const stored = new BucketSet(ACTOR_B, undefined, false);
      const f = deferredFolder();
      stored.foldWith(f.folder);
      for (let i = 1; i <= FOLD_AT; i++) stored.applyRemote(write(`v${i}`));
      expect(f.queued.length).toBe(1);
      for (let i = FOLD_AT + 1; i <= FOLD_AT + 10; i++) stored.applyRemote(write(`v${i}`));
      expect(f.queued.length).toBe(1); // one fold of a document at a time
      const held = stored.chunkBytesHeld;
      f.runAll();
      expect(stored.chunkBytesHeld).toBeLessThan(held);
      expect(stored.chunkBytesHeld).toBeGreaterThan(0); // the 10 that came meanwhile
      expect(stored.loads).toBe(0); // never loaded here
      expect(read(stored, key)).toBe(`v${FOLD_AT + 10}`);
    });

    test("a fold that comes back after the document was read, or joined by a save, is dropped", () => {
      for (const change of ["read", "save"] as const) {
        const { key, write } = authorIn(20);
        const stored = new BucketSet(ACTOR_B, undefined, false);
        const f = deferredFolder();
        stored.foldWith(f.folder);
        for (let i = 1; i <= FOLD_AT; i++) stored.applyRemote(write(`v${i}`));
        if (change === "read") {
          expect(read(stored, key)).toBe(`v${FOLD_AT}`);
          stored.settle();
        } else stored.save(20);
        stored.applyRemote(write("later"));
        f.runAll(); // stale: must not replace the bytes (it lacks "later")
        expect(read(stored, key)).toBe("later");
      }
    });

    test("a fold that keeps failing is tried again as folds double apart, not on every change", () => {
      const { key, write } = authorIn(22);
      const stored = new BucketSet(ACTOR_B, undefined, false);
      const triedAt: number[] = [];
      let i = 0;
      stored.foldWith((_bytes, _chunks, done) => { triedAt.push(i); done(null); });
      for (i = 1; i <= 300; i++) stored.applyRemote(write(`v${i}`));
      // The chunks stay, so each try needs as many as all the tried ones before: 64, 65, 129, 258.
      expect(triedAt).toEqual([FOLD_AT, FOLD_AT + 1, 2 * FOLD_AT + 1, 4 * FOLD_AT + 2]);
      expect(read(stored, key)).toBe("v300");
    });

    test("a failed fold leaves the document as it was, and a later one runs", () => {
      const { key, write } = authorIn(21);
      const stored = new BucketSet(ACTOR_B, undefined, false);
      let calls = 0;
      stored.foldWith((bytes, chunks, done) => { calls++; done(calls === 1 ? null : foldDocument(bytes, chunks)); });
      for (let i = 1; i <= FOLD_AT; i++) stored.applyRemote(write(`v${i}`));
      const held = stored.chunkBytesHeld;
      expect(calls).toBe(1);
      stored.applyRemote(write("next"));
      expect(calls).toBe(2); // still due, no longer under way
      expect(stored.chunkBytesHeld).toBeLessThan(held);
      expect(read(stored, key)).toBe("next");
    });
  });

  test("heads are read from the document: [] for none, the last change's hash after a linear history", () => {
    const { write } = authorIn(14);
    const stored = new BucketSet(ACTOR_B, undefined, false);
    expect(stored.heads(14)).toEqual([]);
    const [c] = write("x");
    stored.applyRemote([c]);
    expect(stored.heads(14)).toEqual([c.hash]);
  });
});

describe("lending (the backend) and kept loans (a frontend)", () => {
  const B = 21;
  /** A stored set (the backend's) fed by an author writing one key of bucket B. */
  const setUp = () => {
    const author = new BucketSet(ACTOR_A);
    const key = findKeyInBucket(B);
    const lender = new BucketSet(ACTOR_B, undefined, false);
    const write = (v: string) => { author.put(key, value(v)); lender.applyRemote(author.commit()); };
    /** A borrower's change reaches the backend and the owner (as the fan-out brings it). */
    const take = (changes: BucketChange[]) => { lender.applyRemote(changes); author.applyRemote(changes); };
    return { key, lender, write, take };
  };

  test("a borrower keeping a version is sent the changes since; without one, or once they are joined or folded away, the saved bytes", () => {
    const { lender, write } = setUp();
    expect(lender.lend(B, -1)).toEqual({ bucket: B, version: 0, bytes: null }); // nothing stored yet
    expect(lender.lend(B, 0)).toEqual({ bucket: B, version: 0, since: 0, chunks: [] });
    write("one");
    const first = lender.lend(B, -1);
    expect("bytes" in first && first.bytes).toBeInstanceOf(Uint8Array);
    write("two");
    write("three");
    const since = lender.lend(B, first.version);
    expect(since).toMatchObject({ since: first.version, version: first.version + 2 });
    expect("chunks" in since && since.chunks.length).toBe(2);
    expect(lender.lend(B, since.version)).toEqual({ bucket: B, version: since.version, since: since.version, chunks: [] }); // current
    expect(lender.lend(B, since.version + 1)).toHaveProperty("bytes"); // a version it never had
    lender.save(B); // joins the chunks on
    expect(lender.lend(B, first.version)).toHaveProperty("bytes");
    for (let i = 0; i < FOLD_AT; i++) write(`v${i}`); // folded into the saved bytes on this thread
    expect(lender.lend(B, since.version)).toHaveProperty("bytes");
  });

  test("a kept loan is borrowed again by the changes since, with the borrower's own writes, and writes on from the document's heads", () => {
    const { key, lender, write, take } = setUp();
    const borrower = new BucketSet(ACTOR_C, () => false);
    write("owner-1");
    expect(borrower.borrow(lender.lend(B, borrower.known(B)))).toBe(true);
    borrower.put(key, value("borrower"));
    take(borrower.commit());
    borrower.release(B);
    expect(borrower.known(B)).toBeGreaterThan(0);
    write("owner-2");
    expect(borrower.borrow(lender.lend(B, borrower.known(B)))).toBe(true);
    expect(borrower.borrows).toEqual({ loaded: 1, kept: 1 });
    expect(read(borrower, key)).toBe("owner-2");
    borrower.put(key, value("borrower-2"));
    const [change] = borrower.commit();
    expect(change.deps).toEqual(lender.heads(B)); // it extends the document: no concurrent change to reconcile
    lender.applyRemote([change]);
    borrower.release(B);
    expect(read(lender, key)).toBe("borrower-2");
  });

  test("a document the backend loads only to read goes back as it was stored, unsaved and at its version; one it writes is saved anew", () => {
    const { key, lender, write } = setUp();
    write("one");
    const lent = lender.lend(B, -1);
    write("two");
    expect(read(lender, key)).toBe("two"); // loads it
    lender.settle();
    expect(lender.lend(B, lent.version)).toMatchObject({ since: lent.version, version: lent.version + 1 });
    lender.delete(key); // the backend's own write (a lease's key)
    lender.commit();
    lender.settle();
    expect(lender.lend(B, lent.version)).toHaveProperty("bytes");
    expect(read(lender, key)).toBeUndefined();
  });

  test("a loan of the changes since a version no longer kept is refused (the executor fetches again)", () => {
    const { lender, write } = setUp();
    const borrower = new BucketSet(ACTOR_C, () => false);
    write("one");
    borrower.borrow(lender.lend(B, -1));
    borrower.release(B);
    const since = lender.lend(B, borrower.known(B));
    borrower.free(); // dropped meanwhile
    expect(borrower.borrow(since)).toBe(false);
    expect(borrower.borrow(lender.lend(B, borrower.known(B)))).toBe(true);
  });

  test(`at most ${LENT_KEPT_MAX} documents are kept, the least recently borrowed freed first`, () => {
    const borrower = new BucketSet(ACTOR_C, () => false);
    const lend = (b: number) => ({ bucket: b, version: 0, bytes: null });
    for (let b = 0; b <= LENT_KEPT_MAX; b++) {
      borrower.borrow(lend(b));
      borrower.release(b);
    }
    expect(borrower.known(0)).toBe(-1);
    expect(borrower.known(1)).toBe(0);
    borrower.borrow({ bucket: 1, version: 0, since: 0, chunks: [] }); // used again: now the most recent
    borrower.release(1);
    borrower.borrow(lend(LENT_KEPT_MAX + 1));
    borrower.release(LENT_KEPT_MAX + 1);
    expect([borrower.known(1), borrower.known(2)]).toEqual([0, -1]);
  });
});
