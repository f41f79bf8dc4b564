/**
 * Bucket documents kept as saved bytes plus the change chunks that arrived
 * since (the backend's BucketSet, "stored" mode): saved bytes followed by
 * change chunks are themselves a valid Automerge save, so taking a change
 * costs no Automerge work. Chunks are folded into the saved bytes as they pile
 * up (see FOLD_AT), by a Folder: on this thread by default, on the server's
 * fold thread when it has one.
 */
import { A, growAhead } from "./automerge";
import { ActorId } from "../persist/encoding";
import { MergekvError, assert } from "../errors";

export type Handle = ReturnType<typeof A.getBackend>;

/**
 * When a stored document's change chunks are folded into its saved bytes:
 * once they number FOLD_AT and as many as the changes folded in before, or
 * weigh FOLD_CHUNK_BYTES_MAX. A fold loads and saves the whole document,
 * whose history only grows: folding every FOLD_AT chunks made a hot key's
 * writes cost more the longer the server ran (40% of the main thread after
 * 30 s of lease churn). Doubling keeps a fold's cost in proportion to the
 * changes that arrived since the last one. Two caps bound the memory chunks
 * hold: FOLD_CHUNK_BYTES_MAX per document (and so what a load replays), and
 * FOLD_CHUNK_BYTES_BUDGET over the whole set, past which any document folds
 * every FOLD_AT chunks again, as before.
 */
export const FOLD_AT = 64;
export const FOLD_CHUNK_BYTES_MAX = 4 << 20;
export const FOLD_CHUNK_BYTES_BUDGET = 64 << 20;

/** A document known only by its saved bytes (null: none, only changes) and the change chunks that arrived since. */
export interface Stored {
  bytes: Uint8Array | null;
  chunks: Uint8Array[];
  /** The document's version (see StoredDocs.version) that `bytes` alone hold: chunks[i] takes it to from + i + 1. */
  from: number;
  /** Bytes in `chunks`. */
  chunkBytes: number;
  /** A fold of it is under way (see Folder). */
  folding?: boolean;
}

/**
 * Folds a stored document: `done` gets the saved bytes of `bytes` followed
 * by `chunks`, or null if the fold failed (the document then stays as it
 * was). It may call `done` at once or later.
 */
export type Folder = (bytes: Uint8Array | null, chunks: Uint8Array[], done: (folded: Uint8Array | null) => void) => void;

/**
 * New handles are cloned from one empty document: `A.init` materializes a
 * proxy root (about 140 µs here), a clone of an empty handle about 12 µs.
 */
let template: Handle | undefined;
export function emptyHandle(actor: ActorId): Handle {
  template ??= A.getBackend(A.init());
  return template.clone(actor);
}

/** The actor of a handle that only loads and saves (it never writes). */
const FOLD_ACTOR = "00".repeat(16) as ActorId;

/** Saved bytes followed by change chunks, loaded and saved again as one compact document. */
export function foldDocument(bytes: Uint8Array | null, chunks: Uint8Array[]): Uint8Array {
  const d = emptyHandle(FOLD_ACTOR);
  try {
    if (bytes) d.loadIncremental(bytes);
    if (chunks.length > 0) d.applyChanges(chunks);
    return d.save();
  } finally {
    d.free();
    growAhead();
  }
}

/** A fold whose failure is its message rather than a throw (what a Folder reports as null). */
export function tryFold(bytes: Uint8Array | null, chunks: Uint8Array[]): { bytes: Uint8Array | null; error?: string } {
  try {
    return { bytes: foldDocument(bytes, chunks) };
  } catch (e) {
    return { bytes: null, error: (e as Error).message };
  }
}

/**
 * What a borrower is sent of a document (see StoredDocs.lend): the whole
 * saved bytes, or the change chunks since the version it holds (none: it
 * is current). `version`: what it holds afterwards.
 */
export type Loan =
  | { bucket: number; version: number; bytes: Uint8Array | null }
  | { bucket: number; version: number; since: number; chunks: Uint8Array[] };

export class StoredDocs {
  private readonly docs = new Map<number, Stored>();
  /**
   * Per document, a counter that every change to what is stored moves on
   * (each chunk appended by one, new saved bytes by one), kept while the
   * document is taken out to load: a borrower that holds a version is sent
   * only the chunks after it (`lend`).
   */
  private readonly versions = new Map<number, number>();
  /** Bytes of change chunks held over all documents. */
  private chunkBytes = 0;
  /** Changes folded into each document's saved bytes (a lower bound: a snapshot's are not counted). */
  private readonly folded = new Map<number, number>();

  constructor(private folder: Folder, private readonly budget = FOLD_CHUNK_BYTES_BUDGET) {}

  has(bucket: number): boolean {
    return this.docs.has(bucket);
  }

  get(bucket: number): Stored | undefined {
    return this.docs.get(bucket);
  }

  /** Stores a document as these saved bytes (null: none yet), replacing what was stored. */
  set(bucket: number, bytes: Uint8Array | null): Stored {
    this.chunkBytes -= this.docs.get(bucket)?.chunkBytes ?? 0;
    const version = this.version(bucket) + 1;
    this.versions.set(bucket, version);
    const s: Stored = { bytes, chunks: [], chunkBytes: 0, from: version };
    this.docs.set(bucket, s);
    return s;
  }

  /** Stores a document that has only changes so far (they are appended next): its version goes on from where it is. */
  create(bucket: number): Stored {
    assert(!this.docs.has(bucket), `bucket ${bucket} is not stored yet`);
    const s: Stored = { bytes: null, chunks: [], chunkBytes: 0, from: this.version(bucket) };
    this.docs.set(bucket, s);
    return s;
  }

  /** Puts back what `take` took, unchanged (the document was loaded only to be read). */
  restore(bucket: number, s: Stored): void {
    assert(!this.docs.has(bucket), `bucket ${bucket} is taken before it is restored`);
    this.docs.set(bucket, s);
    this.chunkBytes += s.chunkBytes;
  }

  /** The document's version: 0 until something is stored for it. */
  version(bucket: number): number {
    return this.versions.get(bucket) ?? 0;
  }

  /**
   * What a borrower holding version `known` of a stored document (-1: none)
   * needs to hold its current state: the chunks since `known` while they
   * are kept separate, else the saved bytes with the chunks joined on.
   */
  lend(bucket: number, known: number): Loan {
    const s = this.docs.get(bucket);
    const version = this.version(bucket);
    if (s && known >= s.from && known <= version) return { bucket, version, since: known, chunks: s.chunks.slice(known - s.from) };
    if (!s && known === version) return { bucket, version, since: known, chunks: [] }; // none stored, none held
    return { bucket, version, bytes: this.join(bucket) ?? null };
  }

  /** Removes a document to be loaded (its chunks go with it). */
  take(bucket: number): Stored | undefined {
    const s = this.docs.get(bucket);
    if (!s) return undefined;
    this.docs.delete(bucket);
    this.chunkBytes -= s.chunkBytes;
    return s;
  }

  /** Appends change chunks to a stored document (which `set` or `create` made). */
  append(bucket: number, chunks: readonly Uint8Array[]): void {
    const s = this.docs.get(bucket);
    assert(s, `bucket ${bucket} is stored before chunks are appended`);
    this.versions.set(bucket, this.version(bucket) + chunks.length);
    for (const c of chunks) {
      s.chunks.push(c);
      s.chunkBytes += c.byteLength;
      this.chunkBytes += c.byteLength;
    }
  }

  /** The saved bytes with the chunks joined on (and kept joined), which Automerge loads as they are. */
  join(bucket: number): Uint8Array | undefined {
    const s = this.docs.get(bucket);
    if (!s) return undefined;
    if (s.chunks.length > 0) {
      s.bytes = concat(s.bytes ? [s.bytes, ...s.chunks] : s.chunks);
      s.from += s.chunks.length;
      s.chunks = [];
      this.chunkBytes -= s.chunkBytes;
      s.chunkBytes = 0;
    }
    return s.bytes ?? undefined;
  }

  /** Folds with `folder` from now on. */
  foldWith(folder: Folder): void {
    this.folder = folder;
  }

  /** Folds the document if its chunks are due (FOLD_AT) and no fold of it is under way. */
  foldIfDue(bucket: number): void {
    const s = this.docs.get(bucket);
    if (!s || s.folding || !this.due(bucket, s)) return;
    s.folding = true;
    const bytes = s.bytes;
    const count = s.chunks.length;
    try {
      this.folder(bytes, s.chunks.slice(), (folded) => this.takeFold(bucket, s, bytes, count, folded));
    } catch (e) {
      s.folding = false;
      throw new MergekvError("Corrupt", `bucket ${bucket}: Automerge could not load its snapshot`, e);
    }
  }

  private due(bucket: number, s: Stored): boolean {
    if (s.chunks.length < FOLD_AT) return false;
    return s.chunks.length >= (this.folded.get(bucket) ?? 0) || s.chunkBytes >= FOLD_CHUNK_BYTES_MAX || this.chunkBytes >= this.budget;
  }

  /**
   * A fold's result replaces the saved bytes and the chunks it covered,
   * unless the document changed shape meanwhile (loaded, joined, replaced),
   * when it is dropped. Its chunks count as folded either way: a failed fold
   * is tried again only once as many more have come (a backoff), not on
   * every change.
   */
  private takeFold(bucket: number, s: Stored, bytes: Uint8Array | null, count: number, folded: Uint8Array | null): void {
    s.folding = false;
    if (this.docs.get(bucket) !== s || s.bytes !== bytes) return;
    this.folded.set(bucket, (this.folded.get(bucket) ?? 0) + count);
    if (!folded) return;
    let freed = 0;
    for (let i = 0; i < count; i++) freed += s.chunks[i].byteLength;
    s.chunks = s.chunks.slice(count);
    s.from += count;
    s.chunkBytes -= freed;
    this.chunkBytes -= freed;
    s.bytes = folded;
  }

  /** Bytes of change chunks held, not yet folded or joined (counted against the budget). */
  get chunkBytesHeld(): number {
    return this.chunkBytes;
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
