/**
 * The snapshot file that Maintenance.Snapshot streams (`etcdctl snapshot
 * save`) and `mergekv snapshot restore` reads: every entry of the store as
 * one LevelDB iterator saw it (a consistent point in time), framed and
 * checksummed.
 *
 * Layout: "MKVSNAP1" | { 0x01, u32 keyLen, key, u32 valueLen, value }* |
 *         0x00 | u64 entries | u32 crc32 of all before | zero padding to a
 *         multiple of 512 bytes | sha256 of all before (32 bytes).
 * The padding and the sha256 are what etcdctl 3.4 checks before it keeps a
 * file (size % 512 == 32, as a bolt database with etcd's digest appended).
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { crc32Chained } from "./records";
import { Store } from "./store";
import { MergekvError } from "../errors";
import { encodeU64, decodeU64, metaKey } from "./encoding";

const MAGIC = Buffer.from("MKVSNAP1");
const SECTOR_BYTES = 512;
const SHA256_BYTES = 32;
/** Bytes per streamed chunk: well under gRPC's message limit. */
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
/** Entries per batch when restoring. */
export const RESTORE_BATCH_ENTRIES = 10_000;

const ALL = { gte: Buffer.of(0x00), lt: Buffer.of(0xff) };

/** Streams the store as snapshot chunks of about SNAPSHOT_CHUNK_BYTES. */
export async function* snapshotChunks(store: Store): AsyncGenerator<Buffer> {
  const sha = createHash("sha256");
  let crc = 0;
  let length = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const add = (b: Buffer) => {
    crc = crc32Chained(b, crc);
    sha.update(b);
    pending.push(b);
    pendingBytes += b.length;
    length += b.length;
  };
  const lengthOf = (n: number) => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n);
    return b;
  };
  const take = () => {
    const out = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    return out;
  };
  add(MAGIC);
  let entries = 0;
  for await (const [key, value] of store.entries(ALL)) {
    add(Buffer.of(0x01));
    add(lengthOf(key.length));
    add(key);
    add(lengthOf(value.length));
    add(value);
    entries++;
    if (pendingBytes >= SNAPSHOT_CHUNK_BYTES) yield take();
  }
  add(Buffer.concat([Buffer.of(0x00), encodeU64(entries)]));
  add(lengthOf(crc)); // crc32 of everything before it
  const pad = (SECTOR_BYTES - (length % SECTOR_BYTES)) % SECTOR_BYTES;
  if (pad > 0) add(Buffer.alloc(pad));
  pending.push(sha.digest());
  yield take();
}

/** Checks a snapshot file and yields its entries, then returns its trailer's crc32; any damage is a Corrupt error. */
export function* snapshotEntries(file: Buffer): Generator<[Buffer, Buffer], { crc: number }> {
  if (file.length % SECTOR_BYTES !== SHA256_BYTES || !file.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new MergekvError("Corrupt", "not a mergekv snapshot (bad header or size)");
  }
  const body = file.subarray(0, file.length - SHA256_BYTES);
  if (!createHash("sha256").update(body).digest().equals(file.subarray(body.length))) {
    throw new MergekvError("Corrupt", "snapshot sha256 mismatch: the file is damaged or truncated");
  }
  let off = MAGIC.length;
  const need = (n: number) => {
    if (off + n > body.length) throw new MergekvError("Corrupt", `snapshot truncated at byte ${off}`);
  };
  const bytes = (): Buffer => {
    need(4);
    const n = body.readUInt32BE(off);
    need(4 + n);
    const b = body.subarray(off + 4, off + 4 + n);
    off += 4 + n;
    return b;
  };
  let count = 0;
  for (;;) {
    need(1);
    const tag = body[off++];
    if (tag === 0x00) break;
    if (tag !== 0x01) throw new MergekvError("Corrupt", `snapshot: unknown frame ${tag} at byte ${off - 1}`);
    yield [bytes(), bytes()];
    count++;
  }
  need(12);
  const expected = decodeU64(body, off);
  const crcAt = off + 8;
  if (crc32(body.subarray(0, crcAt)) !== body.readUInt32BE(crcAt)) throw new MergekvError("Corrupt", "snapshot crc32 mismatch");
  if (count !== expected) throw new MergekvError("Corrupt", `snapshot holds ${count} entries, its trailer says ${expected}`);
  return { crc: body.readUInt32BE(crcAt) };
}

/** What `etcdctl snapshot status` reports of a file, for a mergekv snapshot. */
export interface SnapshotStatus {
  /** crc32 of the file's entries and framing (its trailer's checksum). */
  hash: number;
  /** The revision the store had when the snapshot was taken. */
  revision: number;
  /** Entries in the file (etcd counts its database's keys of every bucket). */
  totalKey: number;
  /** The file's size in bytes. */
  totalSize: number;
}

/** Checks a snapshot file whole and describes it; any damage is a Corrupt error. */
export function snapshotStatus(file: Buffer): SnapshotStatus {
  const revKey = metaKey("rev");
  let revision = 0;
  let totalKey = 0;
  const entries = snapshotEntries(file);
  for (let next = entries.next(); ; next = entries.next()) {
    if (next.done) return { hash: next.value.crc, revision, totalKey, totalSize: file.length };
    const [key, value] = next.value;
    totalKey++;
    if (key.equals(revKey)) revision = decodeU64(value);
  }
}

/** Writes a snapshot's entries into an empty store, in batches; returns how many. */
export async function restoreSnapshot(file: Buffer, store: Store, onProgress?: (done: number, total: number) => void): Promise<number> {
  for await (const _ of store.entries(ALL)) throw new MergekvError("InvalidArgument", "the data directory is not empty; restore needs a new one");
  let total = 0;
  for (const _ of snapshotEntries(file)) total++; // verify the whole file before writing anything
  let batch: { type: "put"; key: Buffer; value: Buffer }[] = [];
  let done = 0;
  for (const [key, value] of snapshotEntries(file)) {
    batch.push({ type: "put", key, value });
    if (batch.length >= RESTORE_BATCH_ENTRIES) {
      await store.batch(batch, false);
      done += batch.length;
      batch = [];
      onProgress?.(done, total);
    }
  }
  await store.batch(batch, true);
  onProgress?.(total, total);
  return total;
}
