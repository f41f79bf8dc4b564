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
import { MergekvError, assert } from "../errors";
import { decodeU64, KeyString, keyToString, U64_BYTES, writeU64 } from "./encoding";

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

/** Writes into one buffer that doubles as needed (a put's record used to be a dozen small buffers and a concat). */
class Writer {
  private buf: Buffer;
  private off: number;

  /** `reserve`: bytes left at the start for the caller (a checksum, see encodeRecord). */
  constructor(sizeHint = 256, private readonly reserve = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, reserve + 16));
    this.off = reserve;
  }

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  u8(n: number) { this.room(1); this.buf[this.off++] = n; }
  u32(n: number) { this.room(4); this.buf.writeUInt32BE(n, this.off); this.off += 4; }
  u64(n: number) { this.room(U64_BYTES); writeU64(this.buf, n, this.off); this.off += U64_BYTES; }
  bytes(b: Uint8Array) { this.u32(b.byteLength); this.room(b.byteLength); this.buf.set(b, this.off); this.off += b.byteLength; }
  /** A key (a binary string, one char per byte) as length and bytes, as `bytes(keyToBytes(key))` writes it. */
  key(k: string) { this.u32(k.length); this.room(k.length); this.buf.write(k, this.off, k.length, "latin1"); this.off += k.length; }
  /** The bytes written, reserved start included, in a buffer of their own size. */
  finish(): Buffer {
    return this.off === this.buf.length ? this.buf : Buffer.from(this.buf.subarray(0, this.off));
  }
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
  atEnd(): boolean { return this.off === this.buf.length; }
  end() { if (this.off !== this.buf.length) throw new MergekvError("Corrupt", `${this.what}: ${this.buf.length - this.off} trailing bytes`); }
}

export function encodeRecord(r: ChangeRecord): Buffer {
  let size = CRC_BYTES + 1 + U64_BYTES + 4 + 4;
  for (const c of r.changes) size += 8 + c.bytes.byteLength;
  for (const x of r.writes) size += 4 + x.key.length + 1 + U64_BYTES + 4 + (x.value?.byteLength ?? 0);
  const w = new Writer(size, CRC_BYTES);
  w.u8(RECORD_VERSION);
  w.u64(r.rev);
  w.u32(r.changes.length);
  for (const c of r.changes) { w.u32(c.bucket); w.bytes(c.bytes); }
  w.u32(r.writes.length);
  for (const x of r.writes) {
    w.key(x.key);
    w.u8(x.value === null ? 1 : 0);
    w.u64(x.lease);
    w.bytes(x.value ?? EMPTY);
  }
  const out = w.finish();
  assert(out.length === size, "a record's size is known before it is written");
  out.writeUInt32BE(crc32(out.subarray(CRC_BYTES)));
  return out;
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

const CRC_BYTES = 4;
const EMPTY = new Uint8Array(0);

/** A checksummed blob (bucket documents, key histories, metadata); encodeRecord writes the same layout in place. */
export function sealBlob(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(CRC_BYTES + body.byteLength);
  out.writeUInt32BE(crc32(body));
  out.set(body, CRC_BYTES);
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
    w.key(key);
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
