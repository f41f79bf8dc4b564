/**
 * The keyspace as Automerge documents: keys hash-split across BUCKET_COUNT
 * separate documents, each a flat root map from key (binary string) to value
 * (bytes). Automerge 3.x pays a walk over the touched map on every applied
 * remote change, so small maps keep that walk short (REDESIGN.md, "Layout").
 *
 * All access goes through each document's low-level handle (`getBackend`):
 * the public proxy API copies every patched object.
 */
import { ActorId, KeyString } from "../persist/encoding";
import { BucketChange } from "../persist/records";
import { MergekvError, assert } from "../errors";
import { Folder, Handle, Loan, Stored, StoredDocs, emptyHandle, foldDocument } from "./stored-docs";
import { growAhead } from "./automerge";
import { Loans } from "./loans";

/** Part of the on-disk and on-the-wire layout: peers must agree on it. */
export const BUCKET_COUNT = 16_384;

const ROOT = "_root";

/** Changes a resident set queues for a document (not loaded yet, or loaded and behind) before it takes them at once. */
export const COLD_PENDING_MAX = 256;
/**
 * Longest a resident set applies queued remote changes per event-loop turn.
 * One DeleteRange of 9,000 keys brought the other frontend about 3,000
 * changes; applied at once they held its requests for 0.3-0.4 s.
 */
export const REMOTE_APPLY_SLICE_MS = 4;

/** FNV-1a over the key's bytes: stable across versions and platforms, which the layout needs. */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKET_COUNT;
}

/** The frontend (of `frontends`) that owns a bucket: it holds its document and executes writes routed by its keys. */
export function ownerOf(bucket: number, frontends: number): number {
  return bucket % frontends;
}

/**
 * A set of bucket documents. A replica may own only some buckets (a frontend
 * owns 1/N of them); a document it does not own can be borrowed for a write
 * (lent by the backend) and is released afterwards, then kept to borrow
 * again by the changes since (Loans).
 * A document is never created for a bucket neither owned nor borrowed: a
 * fresh document there would reuse this actor's sequence numbers.
 *
 * Two ways to hold documents:
 *  - resident (frontends): a document is loaded on first use and stays
 *    loaded; a snapshot's bytes wait unloaded, with changes queued after
 *    them, until a read, a write or COLD_PENDING_MAX queued changes needs it.
 *    Others' changes to a loaded document are queued too, and applied in
 *    order a slice per turn (REMOTE_APPLY_SLICE_MS), or at once when the
 *    document is next used: the MVCC store, which reads use, has them
 *    already, and only a write to the document needs them in it.
 *  - stored (the backend): every document is kept as saved bytes plus the
 *    change chunks appended since (StoredDocs), so applying a change costs
 *    no Automerge work. A document is loaded only to be read or written, and
 *    `settle` stores it again.
 */
export class BucketSet {
  private readonly docs: (Handle | undefined)[] = new Array(BUCKET_COUNT);
  private readonly stored: StoredDocs;
  /** Stored mode: documents loaded since the last `settle`, with what was stored for each (none for a new one). */
  private readonly loadedNow = new Map<number, Stored | undefined>();
  /** Stored mode: loaded documents that took a change since (a settle stores them anew; the others go back as they were). */
  private readonly changedNow = new Set<number>();
  /** Documents of buckets not owned: on loan (each also in `docs` while it is), or kept from a loan. */
  private readonly loans = new Loans();
  /** Buckets written by the local change being built, with their heads before it. */
  private readonly touched = new Map<number, string[]>();
  /** Documents loaded from stored bytes so far (each costs an Automerge load). */
  loads = 0;

  constructor(
    readonly actor: ActorId,
    readonly owns: (bucket: number) => boolean = () => true,
    readonly resident = true,
    chunkBudget?: number,
  ) {
    this.stored = new StoredDocs(this.foldHere, chunkBudget);
  }

  /** Folds on this thread: one load (counted) and one save. */
  private readonly foldHere: Folder = (bytes, chunks, done) => {
    this.loads++;
    done(foldDocument(bytes, chunks));
  };

  /** Resident mode: others' changes to loaded documents, in arrival order, not applied yet (see catchUp). */
  private readonly behind = new Map<number, Uint8Array[]>();
  private applyScheduled = false;

  /** The loaded (or now loaded) document, with every change it was sent applied; undefined if none exists. */
  private current(bucket: number): Handle | undefined {
    const d = this.docs[bucket] ?? this.warm(bucket);
    if (d) this.catchUp(bucket, d);
    return d;
  }

  private catchUp(bucket: number, d: Handle): void {
    const list = this.behind.get(bucket);
    if (!list) return;
    this.behind.delete(bucket);
    d.applyChanges(list);
    d.updateDiffCursor(); // drop the patch log the materialized handle keeps (it never drains otherwise)
  }

  /** Applies queued changes for up to REMOTE_APPLY_SLICE_MS, then again next turn while any are left. */
  private applyBehind = (): void => {
    this.applyScheduled = false;
    const started = performance.now();
    for (const b of this.behind.keys()) {
      const d = this.docs[b];
      assert(d, `bucket ${b} with queued changes is loaded`);
      this.catchUp(b, d);
      if (performance.now() - started >= REMOTE_APPLY_SLICE_MS) break;
    }
    growAhead();
    if (this.behind.size > 0) this.scheduleApply();
  };

  private scheduleApply(): void {
    if (this.applyScheduled) return;
    this.applyScheduled = true;
    setImmediate(this.applyBehind);
  }

  private doc(bucket: number): Handle {
    let d = this.current(bucket);
    if (!d) {
      assert(this.owns(bucket), `bucket ${bucket} is owned or borrowed before it is written`);
      d = emptyHandle(this.actor);
      this.docs[bucket] = d;
      if (!this.resident) this.loadedNow.set(bucket, undefined);
    }
    return d;
  }

  /** Loads a stored document with the chunks that arrived since; undefined if it is not stored. */
  private warm(bucket: number): Handle | undefined {
    const s = this.stored.take(bucket);
    if (!s) return undefined;
    this.loads++;
    let d: Handle;
    try {
      d = this.fromBytes(s.bytes);
      if (s.chunks.length > 0) d.applyChanges(s.chunks);
      d.updateDiffCursor();
    } catch (e) {
      throw new MergekvError("Corrupt", `bucket ${bucket}: Automerge could not load its snapshot`, e);
    }
    this.docs[bucket] = d;
    if (!this.resident) this.loadedNow.set(bucket, s);
    growAhead();
    return d;
  }

  /**
   * A handle from saved bytes, through the low-level handle: the public
   * `A.load` builds a JS object tree of every value first (measured 3x slower).
   */
  private fromBytes(bytes: Uint8Array | null): Handle {
    const d = emptyHandle(this.actor);
    if (bytes) d.loadIncremental(bytes);
    d.updateDiffCursor();
    return d;
  }

  /** Whether writes to this bucket can be made here now. */
  holds(bucket: number): boolean {
    return this.owns(bucket) || this.loans.holds(bucket);
  }

  /** The version of a document kept from an earlier loan, -1 if none: what a fetch asks the changes since. */
  known(bucket: number): number {
    return this.loans.known(bucket);
  }

  /**
   * Borrows a document this replica does not own, as the backend lent it
   * (Loans.take). False: the loan sent changes since a version no longer
   * kept, and the caller fetches again.
   */
  borrow(loan: Loan): boolean {
    if (this.owns(loan.bucket)) return true;
    const d = this.loans.take(loan, (bytes) => this.fromBytes(bytes));
    if (!d) return false;
    this.docs[loan.bucket] = d;
    growAhead();
    return true;
  }

  /** Ends a loan; after the last, writes can no longer go to the document (it is kept, see Loans). */
  release(bucket: number): void {
    if (this.loans.end(bucket)) this.docs[bucket] = undefined;
  }

  /** Borrows so far that loaded a document from lent bytes, and those that took a kept one by the changes since. */
  get borrows(): { loaded: number; kept: number } {
    return this.loans.counts;
  }

  /** Stored mode: what a borrower holding version `known` (-1: none) of the document needs (StoredDocs.lend). */
  lend(bucket: number, known: number): Loan {
    this.settle(); // a document loaded here is stored again first: the loan is of what is stored
    return this.stored.lend(bucket, known);
  }

  get(key: KeyString): Uint8Array | undefined {
    const b = bucketOf(key);
    const d = this.current(b);
    if (!d) return undefined;
    const v = d.get(ROOT, key);
    if (v === undefined || v === null) return undefined;
    assert(v instanceof Uint8Array, `bucket values are bytes (key ${JSON.stringify(key)})`);
    return v;
  }

  /** Local write, part of the change that `commit` closes. */
  put(key: KeyString, value: Uint8Array): void {
    this.touch(bucketOf(key)).put(ROOT, key, value);
  }

  delete(key: KeyString): void {
    this.touch(bucketOf(key)).delete(ROOT, key);
  }

  /** The document a local write goes to; its heads are noted before the change opens. */
  private touch(bucket: number): Handle {
    const d = this.doc(bucket);
    if (!this.resident) this.changedNow.add(bucket);
    if (!this.touched.has(bucket)) {
      this.touched.set(bucket, d.getHeads());
      // A change over thousands of documents allocates as it goes: without this, the memory grew
      // 64 KiB at a time until the commit, each growth setting off V8's collector (automerge.ts).
      growAhead();
    }
    return d;
  }

  /**
   * Closes the local change: one Automerge change per touched bucket, shipped
   * as one unit, each with its dependencies and hash (so that a stored set
   * can tell a change that extends its document from a concurrent one).
   */
  commit(): BucketChange[] {
    const out: BucketChange[] = [];
    for (const [b, deps] of this.touched) {
      const d = this.doc(b);
      // A local change depends on every head before it, so its hash is the document's one head now.
      const hash = d.commit();
      if (hash === null) continue;
      const bytes = d.getLastLocalChange();
      assert(bytes, "a committed change is retrievable");
      out.push({ bucket: b, bytes, deps, hash });
    }
    this.touched.clear();
    growAhead();
    return out;
  }

  /** Applies others' changes, one Automerge call per bucket (the per-call walk is paid once); stored mode appends them. */
  applyRemote(changes: readonly BucketChange[]): void {
    const byBucket = new Map<number, Uint8Array[]>();
    for (const c of changes) {
      assert(c.bucket >= 0 && c.bucket < BUCKET_COUNT, `bucket ${c.bucket} in range`);
      if (!this.owns(c.bucket)) continue; // not ours: its owner and the backend apply it
      let list = byBucket.get(c.bucket);
      if (!list) byBucket.set(c.bucket, (list = []));
      list.push(c.bytes);
    }
    for (const [b, list] of byBucket) {
      let s = this.stored.get(b);
      if (!s && !this.resident && !this.docs[b]) s = this.stored.create(b);
      if (s && (!this.resident || s.chunks.length + list.length <= COLD_PENDING_MAX)) {
        this.stored.append(b, list);
        if (!this.resident) this.stored.foldIfDue(b);
        continue;
      }
      if (this.resident && this.docs[b]) {
        const queued = this.behind.get(b);
        // Bounded as a cold document's queue is: past COLD_PENDING_MAX the document takes its queue now.
        if (!queued || queued.length + list.length <= COLD_PENDING_MAX) {
          if (queued) queued.push(...list);
          else this.behind.set(b, list);
          this.scheduleApply();
          continue;
        }
      }
      const d = this.doc(b);
      d.applyChanges(list);
      d.updateDiffCursor();
      if (!this.resident) this.changedNow.add(b);
    }
    growAhead();
  }

  /** Stored mode: runs folds with `folder` from now on (by default they run on this thread, see foldHere). */
  foldWith(folder: Folder): void {
    this.stored.foldWith(folder);
  }

  /**
   * Stored mode: stores again every document loaded since the last call: one
   * that changed as its saved bytes, one only read (its heads, a value) as it
   * was stored, unsaved (a save costs about what the load did, and its
   * version stays, so a borrower keeping it still takes only the changes since).
   */
  settle(): void {
    for (const [b, was] of this.loadedNow) {
      const d = this.docs[b];
      if (!d) continue;
      if (was && !this.changedNow.has(b)) this.stored.restore(b, was);
      else this.stored.set(b, d.save());
      this.docs[b] = undefined;
      d.free();
    }
    this.loadedNow.clear();
    this.changedNow.clear();
    growAhead();
  }

  /** The document's current heads ([] for no document); a stored one is loaded to read them. */
  heads(bucket: number): string[] {
    const d = this.current(bucket);
    return d ? d.getHeads() : [];
  }

  /** Changes queued for missing dependencies, per loaded bucket (should be none after a causal replay). */
  missingDeps(): number {
    let n = 0;
    for (let b = 0; b < BUCKET_COUNT; b++) n += this.docs[b] ? this.current(b)!.getMissingDeps().length : 0;
    return n;
  }

  /**
   * The document's saved bytes. A stored one is not loaded: its saved bytes
   * and chunks are joined (and kept joined), which Automerge loads as they are.
   */
  save(bucket: number): Uint8Array | undefined {
    if (!this.stored.has(bucket)) return this.docs[bucket] && this.current(bucket)!.save();
    return this.stored.join(bucket);
  }

  /** Takes a snapshot's bytes for a bucket; the document loads when first needed. */
  load(bucket: number, bytes: Uint8Array): void {
    if (!this.owns(bucket)) return;
    this.docs[bucket]?.free();
    this.docs[bucket] = undefined;
    this.stored.set(bucket, bytes);
    const queued = this.behind.get(bucket);
    this.behind.delete(bucket);
    if (queued) this.stored.append(bucket, queued); // applying a change twice is a no-op, so whatever the bytes hold
  }

  /** Frees every loaded document (a scratch set that is done with). */
  free(): void {
    for (let b = 0; b < this.docs.length; b++) {
      this.docs[b]?.free();
      this.docs[b] = undefined;
    }
    this.loans.free();
    this.touched.clear();
    this.behind.clear();
  }

  /** Buckets that hold a document, loaded or not. */
  *present(): Generator<number> {
    for (let b = 0; b < BUCKET_COUNT; b++) if (this.docs[b] || this.stored.has(b)) yield b;
  }

  /** Bytes of change chunks held, not yet folded or joined (counted against FOLD_CHUNK_BYTES_BUDGET). */
  get chunkBytesHeld(): number {
    return this.stored.chunkBytesHeld;
  }

  /** Resident mode: loaded documents with others' changes queued, not applied yet. */
  get queuedRemote(): number {
    return this.behind.size;
  }

  /** Documents loaded in memory (the rest wait as saved bytes). */
  get loaded(): number {
    let n = 0;
    for (const d of this.docs) if (d) n++;
    return n;
  }
}
