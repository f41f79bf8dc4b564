/**
 * What the pool posts to each frontend of the backend's applied entries:
 * every write, and only the changes that frontend's replica applies.
 */
import { entriesFor } from "../../src/frontend/pool";
import { Replica, AppliedEntry } from "../../src/backend/replica";
import { bucketOf, ownerOf } from "../../src/backend/buckets";
import { ActorId, KeyString, keyToString } from "../../src/persist/encoding";

const FRONTENDS = 2;
const actors = ["a0".repeat(16), "b1".repeat(16)] as ActorId[];
const authors = new Map<string, number>(actors.map((a, i) => [a, i]));
const replicas = actors.map((a, i) => new Replica(a, { owns: (b) => ownerOf(b, FRONTENDS) === i }));

/** The first key (k0, k1, ...) whose bucket frontend `owner` owns, after `skip` of them. */
function keyOwnedBy(owner: number, skip = 0): KeyString {
  for (let n = 0; ; n++) {
    const k = keyToString(Buffer.from(`k${n}`)) as KeyString;
    if (ownerOf(bucketOf(k), FRONTENDS) === owner && skip-- === 0) return k;
  }
}

test("a frontend is sent the changes it applies: to its buckets, by others; never its own; every write", () => {
  const mineA = keyOwnedBy(0);
  const mineB = keyOwnedBy(1);
  const borrowedByB = keyOwnedBy(0, 1); // a bucket frontend 0 owns, written by frontend 1 (as a cross-bucket txn does)

  // Frontend 0 writes its own key; frontend 1 its own and, borrowing, one of frontend 0's.
  replicas[0].buckets.put(mineA, Buffer.from("from-0"));
  const changesA = replicas[0].buckets.commit();
  replicas[1].buckets.borrow({ bucket: bucketOf(borrowedByB), version: 0, bytes: replicas[0].buckets.save(bucketOf(borrowedByB)) ?? null });
  replicas[1].buckets.put(mineB, Buffer.from("from-1"));
  replicas[1].buckets.put(borrowedByB, Buffer.from("borrowed"));
  const changesB = replicas[1].buckets.commit();
  replicas[1].buckets.release(bucketOf(borrowedByB));
  expect(changesA).toHaveLength(1);
  expect(changesB).toHaveLength(2);

  const entries: AppliedEntry[] = [
    { rev: 2, actor: actors[0], seq: 1, changes: changesA, writes: [{ key: mineA, value: Buffer.from("from-0"), lease: 0 }] },
    { rev: 3, actor: actors[1], seq: 1, changes: changesB, writes: [{ key: mineB, value: Buffer.from("from-1"), lease: 0 }, { key: borrowedByB, value: Buffer.from("borrowed"), lease: 0 }] },
  ];
  const to0 = entriesFor(0, FRONTENDS, authors, entries);
  const to1 = entriesFor(1, FRONTENDS, authors, entries);

  // Every write goes to both; the revisions, actors and seqs too (a frontend completes its own requests by them).
  for (const sent of [to0, to1]) {
    expect(sent.map((e) => [e.rev, e.actor, e.seq, e.writes])).toEqual(entries.map((e) => [e.rev, e.actor, e.seq, e.writes]));
  }
  // Frontend 0: none of its own changes; of frontend 1's, only the one to its bucket.
  expect(to0[0].changes).toEqual([]);
  expect(to0[1].changes.map((c) => c.bucket)).toEqual([bucketOf(borrowedByB)]);
  // Frontend 1: frontend 0's change is to a bucket it does not own; its own are not sent back.
  expect(to1[0].changes).toEqual([]);
  expect(to1[1].changes).toEqual([]);

  // What frontend 0 is sent is enough: its document of the borrowed bucket now holds frontend 1's write.
  replicas[0].apply(to0);
  expect(Buffer.from(replicas[0].buckets.get(borrowedByB)!).toString()).toBe("borrowed");
  expect(Buffer.from(replicas[0].buckets.get(mineA)!).toString()).toBe("from-0");
  expect(replicas[0].buckets.missingDeps()).toBe(0);
  expect(replicas[0].rev).toBe(3);
});

test("entries recovered from an earlier process (an actor no frontend has now) keep their changes for the owner", () => {
  const earlier = "cc".repeat(16) as ActorId;
  const k = keyOwnedBy(1, 2);
  const author = new Replica(earlier);
  author.buckets.put(k, Buffer.from("before the restart"));
  const entries: AppliedEntry[] = [{ rev: 1, actor: earlier, seq: 1, changes: author.buckets.commit(), writes: [{ key: k, value: Buffer.from("before the restart"), lease: 0 }] }];
  expect(entriesFor(1, FRONTENDS, authors, entries)[0].changes).toHaveLength(1);
  expect(entriesFor(0, FRONTENDS, authors, entries)[0].changes).toEqual([]);
});
