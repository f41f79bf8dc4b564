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

/** Changes a not-yet-loaded document may queue before it is loaded to take them. */
export const COLD_PENDING_MAX = 256;

/** A document known only by its saved bytes, with the changes that arrived since. */
interface Cold {
  bytes: Uint8Array;
  pending: Uint8Array[];
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
 * Documents load lazily: a snapshot's bytes are kept as they are (with any
 * changes replayed after them) until a read, a write or a save needs the
 * document, so a restart does not wait for thousands of Automerge loads.
 */
export class BucketSet {
  private readonly docs: (Handle | undefined)[] = new Array(BUCKET_COUNT);
  private readonly cold = new Map<number, Cold>();
  /** Borrowed buckets and how many requests hold each. */
  private readonly borrowed = new Map<number, number>();
  /** Buckets written by the local change being built. */
  private readonly touched = new Set<number>();

  constructor(readonly actor: ActorId, readonly owns: (bucket: number) => boolean = () => true) {}

  private doc(bucket: number): Handle {
    let d = this.docs[bucket] ?? this.warm(bucket);
    if (!d) {
      assert(this.owns(bucket), `bucket ${bucket} is owned or borrowed before it is written`);
      d = A.getBackend(A.init({ actor: this.actor }));
      this.docs[bucket] = d;
    }
    return d;
  }

  /** Loads a cold document and applies what queued for it; undefined if it is not cold. */
  private warm(bucket: number): Handle | undefined {
    const c = this.cold.get(bucket);
    if (!c) return undefined;
    this.cold.delete(bucket);
    let d: Handle;
    try {
      d = this.fromBytes(c.bytes);
    } catch (e) {
      throw new MergekvError("Corrupt", `bucket ${bucket}: Automerge could not load its snapshot`, e);
    }
    if (c.pending.length > 0) {
      d.applyChanges(c.pending);
      d.updateDiffCursor();
    }
    this.docs[bucket] = d;
    return d;
  }

  /**
   * A handle from saved bytes, through the low-level handle: the public
   * `A.load` builds a JS object tree of every value first (measured 3x slower).
   */
  private fromBytes(bytes: Uint8Array): Handle {
    const d = A.getBackend(A.init({ actor: this.actor }));
    d.loadIncremental(bytes);
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
    this.docs[bucket] = bytes ? this.fromBytes(bytes) : A.getBackend(A.init({ actor: this.actor }));
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
    const b = bucketOf(key);
    this.doc(b).put(ROOT, key, value);
    this.touched.add(b);
  }

  delete(key: KeyString): void {
    const b = bucketOf(key);
    this.doc(b).delete(ROOT, key);
    this.touched.add(b);
  }

  /** Closes the local change: one Automerge change per touched bucket, shipped as one unit. */
  commit(): BucketChange[] {
    const out: BucketChange[] = [];
    for (const b of this.touched) {
      const d = this.doc(b);
      if (d.commit() === null) continue;
      const bytes = d.getLastLocalChange();
      assert(bytes, "a committed change is retrievable");
      out.push({ bucket: b, bytes });
    }
    this.touched.clear();
    return out;
  }

  /** Applies others' changes, one Automerge call per bucket (the per-call walk is paid once). */
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
      const c = this.cold.get(b);
      if (c && c.pending.length + list.length <= COLD_PENDING_MAX) {
        c.pending.push(...list);
        continue;
      }
      const d = this.doc(b);
      d.applyChanges(list);
      d.updateDiffCursor(); // drop the patch log the materialized handle keeps (it never drains otherwise)
    }
  }

  /** Changes queued for missing dependencies, per bucket (should be none after a causal replay). */
  missingDeps(): number {
    let n = 0;
    for (const d of this.docs) if (d) n += d.getMissingDeps().length;
    return n;
  }

  /** The document's saved bytes; a cold one with nothing queued is returned as it is, unloaded. */
  save(bucket: number): Uint8Array | undefined {
    const c = this.cold.get(bucket);
    if (c && c.pending.length === 0) return c.bytes;
    return (this.docs[bucket] ?? this.warm(bucket))?.save();
  }

  /** Takes a snapshot's bytes for a bucket; the document loads when first needed. */
  load(bucket: number, bytes: Uint8Array): void {
    if (!this.owns(bucket)) return;
    this.docs[bucket]?.free();
    this.docs[bucket] = undefined;
    this.cold.set(bucket, { bytes, pending: [] });
  }

  /** Buckets that hold a document, loaded or not. */
  *present(): Generator<number> {
    for (let b = 0; b < BUCKET_COUNT; b++) if (this.docs[b] || this.cold.has(b)) yield b;
  }

  /** Documents loaded in memory (the rest wait as saved bytes). */
  get loaded(): number {
    let n = 0;
    for (const d of this.docs) if (d) n++;
    return n;
  }
}
