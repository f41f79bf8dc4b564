/**
 * The change record: what one write request made, persisted as one unit
 * (a Txn touching many bucket documents stays atomic), checksummed so that a
 * torn or corrupt record is reported, never silently dropped.
 *
 * Layout (big-endian):
 *   crc32(4) over the rest | version(1) | rev(8)
 *   | nChanges(4) { bucket(4) len(4) bytes }
 *   | nWrites(4)  { keyLen(4) key kind(1) lease(8) valueLen(4) value }
 */
import { crc32 } from "node:zlib";
import { MergekvError } from "../errors";
import { encodeU64, decodeU64, KeyString, keyToBytes, keyToString } from "./encoding";

export const RECORD_VERSION = 1;

/** One Automerge change to one bucket document. */
export interface BucketChange {
  bucket: number;
  bytes: Uint8Array;
  /**
   * The change's dependencies and hash, as its author knew them (Automerge
   * hex hashes). Not persisted: the backend uses them, while the change is
   * live, to tell a change that extends its document from a concurrent one.
   */
  deps?: string[];
  hash?: string;
}

/** What a write request did to one key: the event the MVCC layer records. */
export interface Write {
  key: KeyString;
  /** null: the key was deleted. */
  value: Uint8Array | null;
  lease: number;
}

export interface ChangeRecord {
  rev: number;
  changes: BucketChange[];
  writes: Write[];
}

class Writer {
  private parts: Buffer[] = [];
  u8(n: number) { this.parts.push(Buffer.of(n)); }
  u32(n: number) { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(n); this.parts.push(b); }
  u64(n: number) { this.parts.push(encodeU64(n)); }
  bytes(b: Uint8Array) { this.u32(b.byteLength); this.parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength)); }
  finish(): Buffer { return Buffer.concat(this.parts); }
}

class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  private need(n: number) {
    if (this.off + n > this.buf.length) throw new MergekvError("Corrupt", `${this.what}: truncated at byte ${this.off} (needs ${n} more, has ${this.buf.length - this.off})`);
  }
  u8(): number { this.need(1); return this.buf[this.off++]; }
  u32(): number { this.need(4); const v = this.buf.readUInt32BE(this.off); this.off += 4; return v; }
  u64(): number { this.need(8); const v = decodeU64(this.buf, this.off); this.off += 8; return v; }
  bytes(): Uint8Array { const n = this.u32(); this.need(n); const v = this.buf.subarray(this.off, this.off + n); this.off += n; return new Uint8Array(v); }
  end() { if (this.off !== this.buf.length) throw new MergekvError("Corrupt", `${this.what}: ${this.buf.length - this.off} trailing bytes`); }
}

export function encodeRecord(r: ChangeRecord): Buffer {
  const w = new Writer();
  w.u8(RECORD_VERSION);
  w.u64(r.rev);
  w.u32(r.changes.length);
  for (const c of r.changes) { w.u32(c.bucket); w.bytes(c.bytes); }
  w.u32(r.writes.length);
  for (const x of r.writes) {
    w.bytes(keyToBytes(x.key));
    w.u8(x.value === null ? 1 : 0);
    w.u64(x.lease);
    w.bytes(x.value ?? Buffer.alloc(0));
  }
  return sealBlob(w.finish());
}

/** Decodes and verifies a record; `what` names it (its Level key) in errors. */
export function decodeRecord(bytes: Uint8Array, what: string): ChangeRecord {
  const body = openBlob(bytes, what);
  const r = new Reader(Buffer.from(body.buffer, body.byteOffset, body.byteLength), what);
  const version = r.u8();
  if (version !== RECORD_VERSION) throw new MergekvError("Corrupt", `${what}: unknown record version ${version}`);
  const rev = r.u64();
  const changes: BucketChange[] = [];
  for (let n = r.u32(); n > 0; n--) changes.push({ bucket: r.u32(), bytes: r.bytes() });
  const writes: Write[] = [];
  for (let n = r.u32(); n > 0; n--) {
    const key = keyToString(r.bytes());
    const deleted = r.u8() === 1;
    const lease = r.u64();
    const value = r.bytes();
    writes.push({ key, value: deleted ? null : value, lease });
  }
  r.end();
  return { rev, changes, writes };
}

/**
 * crc32 continued over `data`. Node's zlib.crc32 returns 0, not `crc`, for an
 * empty array without a backing store (an empty value that came through
 * postMessage or from Level), which would drop everything hashed before it.
 */
export function crc32Chained(data: Uint8Array, crc: number): number {
  return data.length === 0 ? crc : crc32(data, crc);
}

/** A checksummed blob (bucket documents, key histories, metadata). */
export function sealBlob(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.byteLength);
  out.writeUInt32BE(crc32(body));
  out.set(body, 4);
  return out;
}

export function openBlob(bytes: Uint8Array, what: string): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4) throw new MergekvError("Corrupt", `${what}: record of ${buf.length} bytes is too short`);
  const body = buf.subarray(4);
  const stored = buf.readUInt32BE(0);
  const actual = crc32(body);
  if (stored !== actual) throw new MergekvError("Corrupt", `${what}: checksum mismatch (stored ${stored}, computed ${actual})`);
  return body;
}

/**
 * Many (key, history) pairs in one buffer — u32 keyLen, key, u32 len, bytes —
 * so that handing a million of them to a worker thread is one copy.
 */
export interface PackedHistories {
  bytes: Uint8Array;
  count: number;
}

export function packHistories(pairs: Iterable<[KeyString, Uint8Array]>): PackedHistories {
  const w = new Writer();
  let count = 0;
  for (const [key, bytes] of pairs) {
    w.bytes(keyToBytes(key));
    w.bytes(bytes);
    count++;
  }
  return { bytes: w.finish(), count };
}

export function* unpackHistories(p: PackedHistories): Generator<[KeyString, Uint8Array]> {
  const r = new Reader(Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength), "packed key histories");
  for (let i = 0; i < p.count; i++) yield [keyToString(r.bytes()), r.bytes()];
  r.end();
}

export { Writer as RecordWriter, Reader as RecordReader };
