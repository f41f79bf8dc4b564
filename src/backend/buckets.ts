/**
 * The keyspace as Automerge documents: keys hash-split across BUCKET_COUNT
 * separate documents, each a flat root map from key (binary string) to value
 * (bytes). Automerge 3.x pays a walk over the touched map on every applied
 * remote change, so small maps keep that walk short (REDESIGN.md, "Layout").
 *
 * All access goes through each document's low-level handle (`getBackend`):
 * the public proxy API copies every patched object.
 */
import * as A from "@automerge/automerge";
import { ActorId, KeyString } from "../persist/encoding";
import { BucketChange } from "../persist/records";
import { MergekvError, assert } from "../errors";

/** Part of the on-disk and on-the-wire layout: peers must agree on it. */
export const BUCKET_COUNT = 16_384;

type Handle = ReturnType<typeof A.getBackend>;
const ROOT = "_root";

/** Changes a resident set queues for a not-yet-loaded document before loading it to take them. */
export const COLD_PENDING_MAX = 256;
/**
 * When a stored (non-resident) document's change chunks are folded into its
 * saved bytes: once they number FOLD_AT and as many as the changes folded in
 * before, or weigh FOLD_CHUNK_BYTES_MAX. A fold loads and saves the whole
 * document, whose history only grows: folding every FOLD_AT chunks made a hot
 * key's writes cost more the longer the server ran (40% of the main thread
 * after 30 s of lease churn). Doubling keeps a fold's cost in proportion to
 * the changes that arrived since the last one. Two caps bound the memory
 * chunks hold: FOLD_CHUNK_BYTES_MAX per document (and so what a load
 * replays), and FOLD_CHUNK_BYTES_BUDGET over the whole set, past which any
 * document folds every FOLD_AT chunks again, as before.
 */
export const FOLD_AT = 64;
export const FOLD_CHUNK_BYTES_MAX = 4 << 20;
export const FOLD_CHUNK_BYTES_BUDGET = 64 << 20;

/**
 * A document known only by its saved bytes (null: none, only changes) and the
 * change chunks that arrived since. Saved bytes followed by change chunks is
 * itself a valid Automerge save, so storing needs no Automerge work at all.
 */
interface Stored {
  bytes: Uint8Array | null;
  chunks: Uint8Array[];
  /** Bytes in `chunks`. */
  chunkBytes: number;
  /** A fold of it is under way elsewhere (see Folder). */
  folding?: boolean;
}

/**
 * Folds a stored document off this thread (the server's fold thread):
 * `done` gets the saved bytes of `bytes` followed by `chunks`, or null if
 * the fold failed (the document then stays as it was).
 */
export type Folder = (bytes: Uint8Array | null, chunks: Uint8Array[], done: (folded: Uint8Array | null) => void) => void;

/** Saved bytes followed by change chunks, loaded and saved again as one compact document. */
export function foldDocument(bytes: Uint8Array | null, chunks: Uint8Array[]): Uint8Array {
  const d = emptyHandle(FOLD_ACTOR);
  try {
    if (bytes) d.loadIncremental(bytes);
    if (chunks.length > 0) d.applyChanges(chunks);
    return d.save();
  } finally {
    d.free();
  }
}

function stored(bytes: Uint8Array | null): Stored {
  return { bytes, chunks: [], chunkBytes: 0 };
}

/**
 * New handles are cloned from one empty document: `A.init` materializes a
 * proxy root (about 140 µs here), a clone of an empty handle about 12 µs.
 */
let template: Handle | undefined;
/** The actor of a handle that only loads and saves (it never writes). */
const FOLD_ACTOR = "00".repeat(16) as ActorId;
function emptyHandle(actor: ActorId): Handle {
  template ??= A.getBackend(A.init());
  return template.clone(actor);
}

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
 * owns 1/N of them); a document it does not own can be borrowed for one write
 * (its current bytes come from the backend) and is released afterwards.
 * A document is never created for a bucket neither owned nor borrowed: a
 * fresh document there would reuse this actor's sequence numbers.
 *
 * Two ways to hold documents:
 *  - resident (frontends): a document is loaded on first use and stays
 *    loaded; a snapshot's bytes wait unloaded, with changes queued after
 *    them, until a read, a write or COLD_PENDING_MAX queued changes needs it.
 *  - stored (the backend): every document is kept as saved bytes plus the
 *    change chunks appended since, so applying a change costs no Automerge
 *    work. A document is loaded only to be read or written, and `settle`
 *    stores it again. Chunks are folded into the saved bytes as they pile
 *    up (see FOLD_AT).
 */
export class BucketSet {
  private readonly docs: (Handle | undefined)[] = new Array(BUCKET_COUNT);
  private readonly stored = new Map<number, Stored>();
  /** Stored mode: documents loaded since the last `settle`. */
  private readonly loadedNow = new Set<number>();
  /** Borrowed buckets and how many requests hold each. */
  private readonly borrowed = new Map<number, number>();
  /** Buckets written by the local change being built, with their heads before it. */
  private readonly touched = new Map<number, string[]>();
  /** Stored mode: changes folded into each document's saved bytes (a lower bound: a snapshot's are not counted). */
  private readonly folded = new Map<number, number>();
  /** Stored mode: where folds run (unset: here, synchronously). */
  private folder: Folder | undefined;
  /** Bytes of change chunks held over all documents. */
  private chunkBytes = 0;
  /** Documents loaded from stored bytes so far (each costs an Automerge load). */
  loads = 0;

  constructor(
    readonly actor: ActorId,
    readonly owns: (bucket: number) => boolean = () => true,
    readonly resident = true,
    private readonly chunkBudget = FOLD_CHUNK_BYTES_BUDGET,
  ) {}

  private doc(bucket: number): Handle {
    let d = this.docs[bucket] ?? this.warm(bucket);
    if (!d) {
      assert(this.owns(bucket), `bucket ${bucket} is owned or borrowed before it is written`);
      d = emptyHandle(this.actor);
      this.docs[bucket] = d;
      if (!this.resident) this.loadedNow.add(bucket);
    }
    return d;
  }

  /** Loads a stored document with the chunks that arrived since; undefined if it is not stored. */
  private warm(bucket: number): Handle | undefined {
    const s = this.stored.get(bucket);
    if (!s) return undefined;
    this.stored.delete(bucket);
    this.chunkBytes -= s.chunkBytes;
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
    if (!this.resident) this.loadedNow.add(bucket);
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
    return this.owns(bucket) || this.borrowed.has(bucket);
  }

  /**
   * Borrows a document this replica does not own, from its current saved bytes
   * (null: no document exists yet). Already held: the held one stays (it has
   * this actor's latest changes), and the loan is counted.
   */
  borrow(bucket: number, bytes: Uint8Array | null): void {
    if (this.owns(bucket)) return;
    const loans = this.borrowed.get(bucket);
    if (loans !== undefined) {
      this.borrowed.set(bucket, loans + 1);
      return;
    }
    this.docs[bucket] = this.fromBytes(bytes);
    this.borrowed.set(bucket, 1);
  }

  release(bucket: number): void {
    const loans = this.borrowed.get(bucket);
    if (loans === undefined) return;
    if (loans > 1) {
      this.borrowed.set(bucket, loans - 1);
      return;
    }
    this.borrowed.delete(bucket);
    this.docs[bucket]?.free();
    this.docs[bucket] = undefined;
  }

  get(key: KeyString): Uint8Array | undefined {
    const b = bucketOf(key);
    const d = this.docs[b] ?? this.warm(b);
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
    if (!this.touched.has(bucket)) this.touched.set(bucket, d.getHeads());
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
      if (d.commit() === null) continue;
      const bytes = d.getLastLocalChange();
      assert(bytes, "a committed change is retrievable");
      const heads = d.getHeads();
      assert(heads.length === 1, "a local change depends on every head before it");
      out.push({ bucket: b, bytes, deps, hash: heads[0] });
    }
    this.touched.clear();
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
      if (!s && !this.resident && !this.docs[b]) this.stored.set(b, (s = stored(null)));
      if (s && (!this.resident || s.chunks.length + list.length <= COLD_PENDING_MAX)) {
        for (const c of list) {
          s.chunks.push(c);
          s.chunkBytes += c.byteLength;
          this.chunkBytes += c.byteLength;
        }
        if (!this.resident && this.foldDue(b, s)) this.fold(b);
        continue;
      }
      const d = this.doc(b);
      d.applyChanges(list);
      d.updateDiffCursor(); // drop the patch log the materialized handle keeps (it never drains otherwise)
    }
  }

  private foldDue(bucket: number, s: Stored): boolean {
    if (s.chunks.length < FOLD_AT) return false;
    return s.chunks.length >= (this.folded.get(bucket) ?? 0) || s.chunkBytes >= FOLD_CHUNK_BYTES_MAX || this.chunkBytes >= this.chunkBudget;
  }

  /** Stored mode: runs folds with `folder` from now on (undefined: here again). */
  foldWith(folder: Folder | undefined): void {
    this.folder = folder;
  }

  /** Stored mode: one load and one save turn the collected chunks into saved bytes. */
  private fold(bucket: number): void {
    const s = this.stored.get(bucket)!;
    if (this.folder) {
      if (s.folding) return;
      s.folding = true;
      const bytes = s.bytes;
      const count = s.chunks.length;
      this.folder(bytes, s.chunks.slice(), (folded) => this.takeFold(bucket, s, bytes, count, folded));
      return;
    }
    this.folded.set(bucket, (this.folded.get(bucket) ?? 0) + s.chunks.length);
    const d = this.warm(bucket)!;
    this.stored.set(bucket, stored(d.save()));
    this.docs[bucket] = undefined;
    this.loadedNow.delete(bucket);
    d.free();
  }

  /**
   * A fold that ran elsewhere: its bytes replace the saved bytes and the
   * chunks it covered, unless the document changed shape meanwhile (loaded,
   * joined by a save, replaced by a snapshot), when it is dropped.
   */
  private takeFold(bucket: number, s: Stored, bytes: Uint8Array | null, count: number, folded: Uint8Array | null): void {
    s.folding = false;
    if (!folded || this.stored.get(bucket) !== s || s.bytes !== bytes || s.chunks.length < count) return;
    let freed = 0;
    for (let i = 0; i < count; i++) freed += s.chunks[i].byteLength;
    s.chunks = s.chunks.slice(count);
    s.chunkBytes -= freed;
    this.chunkBytes -= freed;
    s.bytes = folded;
    this.folded.set(bucket, (this.folded.get(bucket) ?? 0) + count);
  }

  /** Stored mode: stores again every document loaded since the last call (to read or to write). */
  settle(): void {
    for (const b of this.loadedNow) {
      const d = this.docs[b];
      if (!d) continue;
      this.stored.set(b, stored(d.save()));
      this.docs[b] = undefined;
      d.free();
    }
    this.loadedNow.clear();
  }

  /** The document's current heads ([] for no document); a stored one is loaded to read them. */
  heads(bucket: number): string[] {
    const d = this.docs[bucket] ?? this.warm(bucket);
    return d ? d.getHeads() : [];
  }

  /** Changes queued for missing dependencies, per loaded bucket (should be none after a causal replay). */
  missingDeps(): number {
    let n = 0;
    for (const d of this.docs) if (d) n += d.getMissingDeps().length;
    return n;
  }

  /**
   * The document's saved bytes. A stored one is not loaded: its saved bytes
   * and chunks are joined (and kept joined), which Automerge loads as they are.
   */
  save(bucket: number): Uint8Array | undefined {
    const s = this.stored.get(bucket);
    if (!s) return this.docs[bucket]?.save();
    if (s.chunks.length > 0) {
      s.bytes = concat(s.bytes ? [s.bytes, ...s.chunks] : s.chunks);
      s.chunks = [];
      this.chunkBytes -= s.chunkBytes;
      s.chunkBytes = 0;
    }
    return s.bytes ?? undefined;
  }

  /** Takes a snapshot's bytes for a bucket; the document loads when first needed. */
  load(bucket: number, bytes: Uint8Array): void {
    if (!this.owns(bucket)) return;
    this.docs[bucket]?.free();
    this.docs[bucket] = undefined;
    this.chunkBytes -= this.stored.get(bucket)?.chunkBytes ?? 0;
    this.stored.set(bucket, stored(bytes));
  }

  /** Buckets that hold a document, loaded or not. */
  *present(): Generator<number> {
    for (let b = 0; b < BUCKET_COUNT; b++) if (this.docs[b] || this.stored.has(b)) yield b;
  }

  /** Bytes of change chunks held, not yet folded or joined (counted against FOLD_CHUNK_BYTES_BUDGET). */
  get chunkBytesHeld(): number {
    return this.chunkBytes;
  }

  /** Documents loaded in memory (the rest wait as saved bytes). */
  get loaded(): number {
    let n = 0;
    for (const d of this.docs) if (d) n++;
    return n;
  }
}

/** One allocation of its own (not a slice of Node's shared pool, which a postMessage would copy whole). */
function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
