/**
 * Applies the backend's batches to its replica, whose documents are stored
 * (bytes plus appended changes, never loaded to apply), and finds the keys
 * where Automerge merged concurrent writers to another value than the last
 * write's: those get a merge entry of their own (backend invariant 3).
 *
 * A change whose dependencies are its bucket's current heads extends the
 * document, so its writes are exactly the document's new values; only
 * buckets that received any other change are loaded to read values back.
 */
import { Replica, AppliedEntry } from "./replica";
import { MvccEvent } from "./mvcc";
import { bucketOf } from "./buckets";
import { Write } from "../persist/records";

export class Reconciler {
  /** Each bucket's heads as of the last applied change, where known (else read from the document). */
  private readonly heads = new Map<number, string[]>();

  constructor(private readonly replica: Replica) {}

  /** Applies `entries`; `merge`: the merged values to record at the next revision (null: none differ). */
  apply(entries: readonly AppliedEntry[]): { events: MvccEvent[]; merge: Write[] | null } {
    const concurrent = this.concurrentBuckets(entries);
    const events = this.replica.apply(entries);
    const merge = concurrent.size > 0 ? this.merged(entries, concurrent) : null;
    this.replica.buckets.settle();
    return { events, merge };
  }

  /** Buckets where a change of `entries` does not extend the document as it stands. */
  private concurrentBuckets(entries: readonly AppliedEntry[]): Set<number> {
    const concurrent = new Set<number>();
    for (const e of entries) {
      for (const c of e.changes) {
        const heads = this.heads.get(c.bucket) ?? this.replica.buckets.heads(c.bucket);
        if (c.hash !== undefined && c.deps !== undefined && sameHeads(heads, c.deps)) {
          this.heads.set(c.bucket, [c.hash]);
        } else {
          concurrent.add(c.bucket);
          this.heads.delete(c.bucket); // read from the document when next needed
        }
      }
    }
    return concurrent;
  }

  /** Keys of concurrent buckets whose CRDT value differs from the last write's: their merged values. */
  private merged(entries: readonly AppliedEntry[], concurrent: Set<number>): Write[] | null {
    let merge: Write[] | null = null;
    const seen = new Set<string>();
    for (let i = entries.length - 1; i >= 0; i--) {
      for (const w of entries[i].writes) {
        if (seen.has(w.key) || !concurrent.has(bucketOf(w.key))) continue;
        seen.add(w.key);
        const crdt = this.replica.buckets.get(w.key);
        const mvcc = this.replica.mvcc.get(w.key);
        if (sameValue(crdt, mvcc?.value)) continue;
        (merge ??= []).push({ key: w.key, value: crdt ?? null, lease: mvcc?.lease ?? 0 });
      }
    }
    return merge;
  }
}

function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  if (a.length === 1) return a[0] === b[0];
  const set = new Set(a);
  return b.every((h) => set.has(h));
}

function sameValue(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.compare(a, b) === 0;
}
