/**
 * Every byte layout mergekv writes lives here: Level keys, revisions,
 * change-record keys, and the key<->string mapping used inside Automerge.
 * Fixed-width big-endian integers so that byte order is numeric order;
 * every decoder checks its length.
 */
import { MergekvError, assert } from "../errors";

/** etcd keys and values are bytes. Inside mergekv a key is a "binary string":
 * one UTF-16 code unit (0..255) per byte. JS string comparison of such strings
 * is byte-wise lexicographic order, so Range order is etcd's. */
export type KeyString = string & { readonly __brand: "KeyString" };

export function keyToString(bytes: Uint8Array): KeyString {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1") as KeyString;
}

export function keyToBytes(key: string): Buffer {
  return Buffer.from(key, "latin1");
}

/** Actor ids are 16 random bytes, written as 32 lowercase hex digits (Automerge's form). */
export type ActorId = string & { readonly __brand: "ActorId" };
export const ACTOR_BYTES = 16;

export function isActorId(s: string): s is ActorId {
  return /^[0-9a-f]{32}$/.test(s);
}

export const U64_BYTES = 8;
const U64_MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(U64_BYTES);
  writeU64(b, n, 0);
  return b;
}

/** Writes `n` big-endian at `offset`, as encodeU64 lays it out (two 32-bit halves: no BigInt on the write path). */
export function writeU64(b: Buffer, n: number, offset: number): void {
  assert(Number.isSafeInteger(n) && n >= 0 && n <= U64_MAX_SAFE, `u64 in safe range: ${n}`);
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

export function decodeU64(b: Uint8Array, offset = 0): number {
  if (b.length < offset + U64_BYTES) throw new MergekvError("Corrupt", `u64 needs ${U64_BYTES} bytes, got ${b.length - offset}`);
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64BE(offset);
  if (v > BigInt(U64_MAX_SAFE)) throw new MergekvError("Corrupt", `u64 out of safe range: ${v}`);
  return Number(v);
}

/** Level key spaces, one prefix byte each. */
export const Prefix = {
  /** c | actor(16) | seq(8) -> change record (one write request's changes). */
  Change: 0x63,
  /** m | rev(8) -> merge record (a revision the backend made to reconcile a CRDT merge). */
  Merge: 0x6d,
  /** b | bucket(4) -> saved Automerge document of that bucket. */
  Bucket: 0x62,
  /** k | key bytes -> a key's MVCC history (snapshot). */
  KeyHistory: 0x6b,
  /** M | name -> metadata. */
  Meta: 0x4d,
  /** L | lease id(8) -> the lease's granted TTL in seconds (8). */
  Lease: 0x4c,
} as const;

export const CHANGE_KEY_BYTES = 1 + ACTOR_BYTES + U64_BYTES;

/** Its own allocation, not a pool slice: the backend keeps these until a snapshot covers them. */
export function changeKey(actor: ActorId, seq: number): Buffer {
  const k = Buffer.alloc(CHANGE_KEY_BYTES);
  k[0] = Prefix.Change;
  k.write(actor, 1, ACTOR_BYTES, "hex");
  encodeU64(seq).copy(k, 1 + ACTOR_BYTES);
  return k;
}

export function decodeChangeKey(k: Uint8Array): { actor: ActorId; seq: number } {
  if (k.length !== CHANGE_KEY_BYTES || k[0] !== Prefix.Change) {
    throw new MergekvError("Corrupt", `change key must be ${CHANGE_KEY_BYTES} bytes with prefix 'c', got ${k.length}`);
  }
  const b = Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  return { actor: b.toString("hex", 1, 1 + ACTOR_BYTES) as ActorId, seq: decodeU64(b, 1 + ACTOR_BYTES) };
}

export const MERGE_KEY_BYTES = 1 + U64_BYTES;

export function mergeKey(rev: number): Buffer {
  return Buffer.concat([Buffer.of(Prefix.Merge), encodeU64(rev)]);
}

export function decodeMergeKey(k: Uint8Array): number {
  if (k.length !== MERGE_KEY_BYTES || k[0] !== Prefix.Merge) {
    throw new MergekvError("Corrupt", `merge key must be ${MERGE_KEY_BYTES} bytes with prefix 'm', got ${k.length}`);
  }
  return decodeU64(k, 1);
}

export const BUCKET_KEY_BYTES = 5;

export function bucketKey(bucket: number): Buffer {
  assert(Number.isInteger(bucket) && bucket >= 0 && bucket < 2 ** 32, `bucket index: ${bucket}`);
  const k = Buffer.allocUnsafe(BUCKET_KEY_BYTES);
  k[0] = Prefix.Bucket;
  k.writeUInt32BE(bucket, 1);
  return k;
}

export function decodeBucketKey(k: Uint8Array): number {
  if (k.length !== BUCKET_KEY_BYTES || k[0] !== Prefix.Bucket) {
    throw new MergekvError("Corrupt", `bucket key must be ${BUCKET_KEY_BYTES} bytes with prefix 'b', got ${k.length}`);
  }
  return Buffer.from(k.buffer, k.byteOffset, k.byteLength).readUInt32BE(1);
}

export function keyHistoryKey(key: string): Buffer {
  return Buffer.concat([Buffer.of(Prefix.KeyHistory), keyToBytes(key)]);
}

export function decodeKeyHistoryKey(k: Uint8Array): KeyString {
  if (k.length < 2 || k[0] !== Prefix.KeyHistory) throw new MergekvError("Corrupt", `key-history key needs prefix 'k' and a key`);
  return keyToString(k.subarray(1));
}

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(Prefix.Meta), Buffer.from(name, "utf8")]);
}

/** [gte, lt) bounds covering every key with this one-byte prefix. */
export function prefixBounds(prefix: number): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.of(prefix), lt: Buffer.of(prefix + 1) };
}

export const LEASE_KEY_BYTES = 1 + U64_BYTES;

export function leaseKey(id: number): Buffer {
  return Buffer.concat([Buffer.of(Prefix.Lease), encodeU64(id)]);
}

export function decodeLeaseKey(k: Uint8Array): number {
  if (k.length !== LEASE_KEY_BYTES || k[0] !== Prefix.Lease) {
    throw new MergekvError("Corrupt", `lease key must be ${LEASE_KEY_BYTES} bytes with prefix 'L', got ${k.length}`);
  }
  return decodeU64(k, 1);
}
