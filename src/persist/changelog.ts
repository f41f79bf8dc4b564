/**
 * The change log: what the store's bytes mean. Change records (one per write
 * request, keyed by actor and sequence number) are appended through group
 * commit; a snapshot saves bucket documents and key histories, then deletes
 * the records it covers, in bounded batches; recovery reads it all back.
 */
import { randomBytes } from "node:crypto";
import { Store, StoreOp } from "./store";
import {
  Prefix, prefixBounds, metaKey, encodeU64, decodeU64, decodeChangeKey, decodeMergeKey,
  decodeBucketKey, decodeKeyHistoryKey, bucketKey, keyHistoryKey, KeyString, ActorId, leaseKey, decodeLeaseKey,
} from "./encoding";
import { ChangeRecord, decodeRecord, encodeRecord, openBlob, sealBlob, PackedHistories, packHistories } from "./records";
import { MergekvError } from "../errors";
import { commitBatch, commitDuration } from "../metrics";

/** Ops in one synced batch at most: bounds the latency a huge burst can add to one fsync. */
export const GROUP_COMMIT_OPS_MAX = 20_000;
/** Ops in one snapshot batch at most: appends wait behind one batch, never behind a whole snapshot. */
export const SNAPSHOT_BATCH_OPS_MAX = 1_000;
/** Bytes of documents and histories in one snapshot batch at most (the same reason). */
export const SNAPSHOT_BATCH_BYTES_MAX = 4 << 20;

export interface Meta {
  rev: number;
  compactRev: number;
  snapshotRev: number;
  clusterId: string;
  memberId: string;
  bucketCount: number;
}

/** A record as it sits in the log: change records carry their actor and seq. */
export interface LoggedRecord {
  key: Buffer;
  actor?: ActorId;
  seq?: number;
  record: ChangeRecord;
}

export interface Snapshot {
  snapshotRev: number;
  buckets: [number, Uint8Array][];
  /** undefined: the key has no history left; its entry is deleted. */
  histories: [KeyString, Buffer | undefined][];
  /** Level keys of the change and merge records the snapshot covers, in revision order (deleted last, in that order). */
  covered: Buffer[];
}

export interface Recovered {
  meta: Meta;
  buckets: [number, Uint8Array][];
  /** Every key's history, packed (records.ts: unpackHistories). */
  histories: PackedHistories;
  /** Records not covered by the snapshot, sorted by revision. */
  records: LoggedRecord[];
  /** Granted leases: (id, TTL in seconds). */
  leases: [number, number][];
  /** Corrupt records moved aside by a repair (empty unless `repair`). */
  quarantined: string[];
}

interface Pending { ops: StoreOp[]; resolve: () => void; reject: (e: unknown) => void }

/** An empty store is at revision 1 and its first write gets 2, as in etcd. */
export const INITIAL_REVISION = 1;

const QUARANTINE = 0x51; // 'Q' | original key: records a repair set aside, kept for inspection

export class ChangeLog {
  private queue: Pending[] = [];
  private flushing = false;
  private highestRev = 0;
  private failure: unknown = null;

  constructor(readonly store: Store, private readonly sync: boolean) {}

  /** Appends encoded records; resolves once durable (unless --unsafe-no-fsync). */
  append(records: { key: Buffer; record: ChangeRecord }[]): Promise<void> {
    const ops: StoreOp[] = records.map((r) => ({ type: "put", key: r.key, value: encodeRecord(r.record) }));
    for (const r of records) if (r.record.rev > this.highestRev) this.highestRev = r.record.rev;
    return this.enqueue(ops);
  }

  /** Records a granted lease (durable when it resolves). */
  putLease(id: number, ttlSeconds: number): Promise<void> {
    return this.enqueue([{ type: "put", key: leaseKey(id), value: encodeU64(ttlSeconds) }]);
  }

  deleteLease(id: number): Promise<void> {
    return this.enqueue([{ type: "del", key: leaseKey(id) }]);
  }

  /** A small named value (sealed with a checksum), durable when it resolves. */
  putMeta(name: string, value: Uint8Array): Promise<void> {
    return this.enqueue([{ type: "put", key: metaKey(name), value: sealBlob(value) }]);
  }

  async getMeta(name: string): Promise<Uint8Array | undefined> {
    const v = await this.store.get(metaKey(name));
    return v && openBlob(v, `meta record ${JSON.stringify(name)}`);
  }

  /** A meta record holding JSON, parsed (undefined if absent); unparsable JSON is Corrupt. */
  async getJsonMeta(name: string): Promise<unknown> {
    const stored = await this.getMeta(name);
    if (!stored) return undefined;
    try {
      return JSON.parse(Buffer.from(stored).toString("utf8"));
    } catch (e) {
      throw new MergekvError("Corrupt", `the ${name} record is not valid JSON`, e);
    }
  }

  /** Writes a meta record as JSON, durable when it resolves. */
  putJsonMeta(name: string, value: unknown): Promise<void> {
    return this.putMeta(name, Buffer.from(JSON.stringify(value)));
  }

  setCompactRev(rev: number): Promise<void> {
    return this.enqueue([{ type: "put", key: metaKey("compactRev"), value: encodeU64(rev) }]);
  }

  /**
   * Saves a snapshot and deletes what it covers, as a series of bounded
   * batches with appends in between (as one batch, a snapshot of 500k keys
   * held every write for seconds). Safe to stop after any batch:
   *  1. Documents and histories go first. They hold the state at the
   *     snapshot revision or later, and replaying records over them is
   *     idempotent (Automerge skips changes it has; MVCC replay skips
   *     revisions a history has).
   *  2. Then `snapshotRev` and the covered records' deletion, in revision
   *     order, so a stop leaves a suffix of them: replayed, a put whose later
   *     delete has been compacted out of the stored histories still meets
   *     that delete.
   * `onBatch`: progress, as (ops written, ops in all).
   */
  async writeSnapshot(s: Snapshot, onBatch?: (done: number, total: number) => void): Promise<void> {
    const total = s.buckets.length + s.histories.length + s.covered.length + 1;
    let done = 0;
    let ops: StoreOp[] = [];
    let bytes = 0;
    const write = async () => {
      const batch = ops;
      ops = [];
      bytes = 0;
      await this.enqueue(batch, true);
      done += batch.length;
      onBatch?.(done, total);
    };
    /** Queues an op; true when the batch is full. */
    const full = (op: StoreOp): boolean => {
      ops.push(op);
      bytes += op.value?.length ?? 0;
      return ops.length >= SNAPSHOT_BATCH_OPS_MAX || bytes >= SNAPSHOT_BATCH_BYTES_MAX;
    };
    for (const [b, doc] of s.buckets) if (full({ type: "put", key: bucketKey(b), value: sealBlob(doc) })) await write();
    for (const [k, h] of s.histories) {
      if (full(h ? { type: "put", key: keyHistoryKey(k), value: sealBlob(h) } : { type: "del", key: keyHistoryKey(k) })) await write();
    }
    if (ops.length > 0) await write();
    full({ type: "put", key: metaKey("snapshotRev"), value: encodeU64(s.snapshotRev) });
    for (const key of s.covered) if (full({ type: "del", key })) await write();
    if (ops.length > 0) await write();
  }

  private enqueue(ops: StoreOp[], alone = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (alone) this.queue.push({ ops: [], resolve: () => {}, reject: () => {} }); // a barrier: nothing joins a snapshot's batch
      if (!this.flushing) void this.flush();
    });
  }

  /** Group commit: whatever queued while the last batch synced goes out as one batch. */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const group: Pending[] = [];
      let ops: StoreOp[] = [];
      while (this.queue.length > 0 && (group.length === 0 || ops.length + this.queue[0].ops.length <= GROUP_COMMIT_OPS_MAX)) {
        const p = this.queue.shift()!;
        group.push(p);
        ops = ops.length === 0 ? p.ops : ops.concat(p.ops);
        if (p.ops.length === 0) break;
      }
      if (this.highestRev > 0) ops.push({ type: "put", key: metaKey("rev"), value: encodeU64(this.highestRev) });
      try {
        const stopTimer = commitDuration.startTimer();
        await this.store.batch(ops, this.sync);
        stopTimer();
        commitBatch.observe(ops.length);
        for (const p of group) p.resolve();
      } catch (e) {
        // A failed write leaves durability unknown: fail this and every later append.
        this.failure = new MergekvError("Unavailable", `persistence failed: ${(e as Error).message}`, e);
        for (const p of group.concat(this.queue)) p.reject(this.failure);
        this.queue = [];
      }
    }
    this.flushing = false;
  }

  /** Whether a write has failed (every later append is refused). */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Waits until everything appended so far is durable. */
  async drain(): Promise<void> {
    await this.enqueue([]);
  }

  async readMeta(): Promise<Meta> {
    const num = async (name: string) => {
      const v = await this.store.get(metaKey(name));
      return v ? decodeU64(v) : 0;
    };
    const str = async (name: string) => (await this.store.get(metaKey(name)))?.toString("utf8");
    let clusterId = await str("clusterId");
    let memberId = await str("memberId");
    const bucketCount = await num("bucketCount");
    if (!clusterId || !memberId) {
      clusterId = randomId();
      memberId = randomId();
      await this.store.batch([
        { type: "put", key: metaKey("clusterId"), value: Buffer.from(clusterId) },
        { type: "put", key: metaKey("memberId"), value: Buffer.from(memberId) },
      ], true);
    }
    return { rev: await num("rev"), compactRev: await num("compactRev"), snapshotRev: await num("snapshotRev"), clusterId, memberId, bucketCount };
  }

  async writeBucketCount(n: number): Promise<void> {
    await this.store.batch([{ type: "put", key: metaKey("bucketCount"), value: encodeU64(n) }], true);
  }

  /** Reads everything back. Unreadable data is an error naming its key, unless `repair`. */
  async recover(repair: boolean, onProgress?: (what: string, n: number) => void): Promise<Recovered> {
    const meta = await this.readMeta();
    const quarantined: string[] = [];
    const bad = async (key: Buffer, value: Buffer, e: unknown) => {
      const what = `${describeKey(key)}: ${(e as Error).message}`;
      if (!repair) throw new MergekvError("Corrupt", `unreadable record ${what}; start with --repair to set it aside`, e);
      quarantined.push(what);
      await this.store.batch([{ type: "put", key: Buffer.concat([Buffer.of(QUARANTINE), key]), value }, { type: "del", key }], true);
    };
    const buckets: [number, Uint8Array][] = [];
    for await (const [k, v] of this.store.entries(prefixBounds(Prefix.Bucket))) {
      try { buckets.push([decodeBucketKey(k), openBlob(v, describeKey(k))]); } catch (e) { await bad(k, v, e); }
    }
    onProgress?.("buckets", buckets.length);
    const pairs: [KeyString, Uint8Array][] = [];
    for await (const [k, v] of this.store.entries(prefixBounds(Prefix.KeyHistory))) {
      try { pairs.push([decodeKeyHistoryKey(k), openBlob(v, describeKey(k))]); } catch (e) { await bad(k, v, e); }
    }
    const histories = packHistories(pairs);
    onProgress?.("key histories", histories.count);
    const records: LoggedRecord[] = [];
    for (const prefix of [Prefix.Change, Prefix.Merge]) {
      for await (const [k, v] of this.store.entries(prefixBounds(prefix))) {
        try {
          const record = decodeRecord(v, describeKey(k));
          if (prefix === Prefix.Change) records.push({ key: k, ...decodeChangeKey(k), record });
          else {
            const rev = decodeMergeKey(k);
            if (rev !== record.rev) throw new MergekvError("Corrupt", `merge record at rev ${rev} says rev ${record.rev}`);
            records.push({ key: k, record });
          }
        } catch (e) { await bad(k, v, e); }
      }
    }
    records.sort((a, b) => a.record.rev - b.record.rev);
    const leases: [number, number][] = [];
    for await (const [k, v] of this.store.entries(prefixBounds(Prefix.Lease))) {
      try { leases.push([decodeLeaseKey(k), decodeU64(v)]); } catch (e) { await bad(k, v, e); }
    }
    onProgress?.("change records", records.length);
    for (const r of records) if (r.record.rev > meta.rev) meta.rev = r.record.rev;
    if (meta.snapshotRev > meta.rev) meta.rev = meta.snapshotRev;
    if (meta.rev < INITIAL_REVISION) meta.rev = INITIAL_REVISION;
    return { meta, buckets, histories, records, leases, quarantined };
  }

  /** Counts records and bytes (for compaction reports). */
  async stats(): Promise<{ records: number; bytes: number }> {
    let records = 0;
    for (const prefix of [Prefix.Change, Prefix.Merge]) {
      for await (const _ of this.store.entries(prefixBounds(prefix))) records++;
    }
    return { records, bytes: await this.store.sizeBytes() };
  }

  async reclaim(): Promise<void> {
    await this.store.reclaim(prefixBounds(Prefix.Change));
    await this.store.reclaim(prefixBounds(Prefix.Merge));
  }
}

function randomId(): string {
  return BigInt.asUintN(63, randomBytes(8).readBigUInt64BE()).toString();
}

/** A Level key in words, for error messages. */
export function describeKey(k: Buffer): string {
  const names: Record<number, string> = { [Prefix.Change]: "change", [Prefix.Merge]: "merge", [Prefix.Bucket]: "bucket", [Prefix.KeyHistory]: "key-history", [Prefix.Meta]: "meta", [Prefix.Lease]: "lease" };
  return `${names[k[0]] ?? "unknown"} record (key ${k.toString("hex")})`;
}
