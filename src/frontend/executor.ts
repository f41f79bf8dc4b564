/**
 * A frontend's request execution: reads from its own replica; writes applied
 * to its Automerge documents at once, as one change per request, shipped to
 * the backend as one envelope. The result is returned when the backend's
 * revision for it comes back (durable by then).
 *
 * Invariants:
 *  1. A request that reads state it may write (Txn compares, prev_kv,
 *     ignore_value, DeleteRange) first waits until this frontend's own
 *     in-flight writes to those keys have come back: no lost update on a key
 *     routed to this frontend.
 *  2. Evaluation and the local Automerge write happen in one synchronous step.
 *  3. Sequence numbers rise by one per envelope under an actor made fresh for
 *     each process: (actor, seq) is never reused.
 *  4. A write to a bucket this frontend does not own happens on a document
 *     borrowed from the backend just before, holding every change so far.
 */
import { Replica, AppliedEntry } from "../backend/replica";
import { bucketOf } from "../backend/buckets";
import { Envelope } from "../backend/backend";
import { LeaseChange } from "../backend/leases";
import { crc32 } from "node:zlib";
import { crc32Chained } from "../persist/records";
import { KeyValue, MvccStore, RANGE_END_ALL } from "../backend/mvcc";
import { KeyString, keyToBytes } from "../persist/encoding";
import { validateRequest } from "./validate";
import { TxnView, inRange } from "./txn-view";
import { MergekvError } from "../errors";
import {
  Compare, DeleteRangeRequest, DeleteRangeResult, HashKVResult, KvRequest, KvResult, OpResult, PutRequest, PutResult,
  RangeRequest, RangeResult, RequestOp, RevokeKeysRequest, RevokeKeysResult, TxnRequest, TxnResult,
} from "./requests";

export interface Executed {
  revision: number;
  result: KvResult;
  /** The result already went out with the write's change (an EarlyReply): no response is due. */
  replied?: boolean;
}

/**
 * A write's result sent with its change, when the result does not depend on
 * the revision the backend will assign (it shows none of the write's own
 * kvs): the main thread answers the request as soon as the change is durable,
 * without waiting for this frontend to hear the revision back.
 */
export interface EarlyReply {
  /** The envelope's seq (with the frontend's actor, the change's key). */
  seq: number;
  /** The pool's request id. */
  id: number;
  result: KvResult;
}

/** Write envelopes a frontend may have in flight: beyond it new writes wait (backpressure). */
export const INFLIGHT_ENVELOPES_MAX = 8_192;
/** Times a write re-gathers borrowed documents when its key set moved meanwhile, before giving up. */
export const BORROW_ATTEMPTS_MAX = 8;

/** Fetches the current bytes of bucket documents (null: none exists yet) from the backend. */
export type BucketFetcher = (buckets: number[]) => Promise<[number, Uint8Array | null][]>;

export class Executor {
  private seq = 0;
  private readonly pendingKeys = new Map<string, number>();
  private readonly pending = new Map<number, { keys: KeyString[]; finish: (rev: number) => void }>();
  private wakers: (() => void)[] = [];
  /** Per bucket we do not own: the seq of our latest envelope that wrote it (bounded by BUCKET_COUNT). */
  private readonly foreignSeq = new Map<number, number>();
  /** Leases that exist, as the backend announced them. */
  private readonly leases: Set<number>;

  constructor(readonly replica: Replica, private readonly send: (e: Envelope, reply?: EarlyReply) => void, private readonly fetch: BucketFetcher, leases: Iterable<number> = []) {
    this.leases = new Set(leases);
  }

  /** Grants and revocations, in the order the backend made them. */
  onLeases(changes: readonly LeaseChange[]): void {
    for (const { id, exists } of changes) {
      if (exists) this.leases.add(id);
      else this.leases.delete(id);
    }
  }

  private view(): TxnView {
    return new TxnView(this.mvcc, (id) => this.leases.has(id));
  }

  private get mvcc(): MvccStore {
    return this.replica.mvcc;
  }

  /**
   * Executes one request; `minRev` is the revision a linearizable read must
   * see. `replyTo`: the request's id, to send a write's result with its
   * change where it can (see EarlyReply).
   */
  async execute(r: KvRequest, minRev: number, replyTo?: number): Promise<Executed> {
    validateRequest(r);
    if (r.kind === "range") {
      if (!r.req.serializable) while (this.mvcc.rev < minRev) await this.nextApplied();
      return { revision: this.mvcc.rev, result: runRange(this.view(), r.req) };
    }
    if (r.kind === "hashKV") {
      while (this.mvcc.rev < minRev) await this.nextApplied();
      return { revision: this.mvcc.rev, result: hashKV(this.mvcc, r.req.revision) };
    }
    const reads = readSet(r);
    const borrowed: number[] = [];
    try {
      for (let attempt = 0; attempt < BORROW_ATTEMPTS_MAX; attempt++) {
        while (this.pending.size >= INFLIGHT_ENVELOPES_MAX || (reads && this.anyPending(reads))) await this.nextApplied();
        const missing = this.unheld(candidateBuckets(this.mvcc, r));
        if (missing.length > 0) {
          await this.borrow(missing, borrowed);
          continue; // state may have moved while we waited: check again
        }
        const view = this.view();
        const result = this.run(view, r);
        if (view.writes.size === 0) return { revision: this.mvcc.rev, result };
        if (this.unheld([...view.writes.keys()].map(bucketOf)).length === 0) return this.ship(view, result, replyTo);
      }
      throw new MergekvError("Unavailable", "mergekv: the keys of this write kept moving; try again");
    } finally {
      for (const b of borrowed) this.replica.buckets.release(b);
    }
  }

  /**
   * Borrows documents from the backend. The fetch is ordered after every
   * envelope sent so far, so its bytes hold our changes up to `asOf`; bytes
   * that miss a later change of ours to that bucket are stale and not used.
   */
  private async borrow(buckets: number[], borrowed: number[]): Promise<void> {
    const asOf = this.seq;
    for (const [b, bytes] of await this.fetch(buckets)) {
      if (!this.replica.buckets.holds(b) && (this.foreignSeq.get(b) ?? 0) > asOf) continue;
      this.replica.buckets.borrow(b, bytes);
      borrowed.push(b);
    }
  }

  private unheld(buckets: Iterable<number>): number[] {
    const out = new Set<number>();
    for (const b of buckets) if (!this.replica.buckets.holds(b)) out.add(b);
    return [...out];
  }

  private run(view: TxnView, r: KvRequest): KvResult {
    switch (r.kind) {
      case "put": return runPut(view, r.req);
      case "deleteRange": return runDelete(view, r.req);
      case "txn": return runTxn(view, r.req);
      case "range": return runRange(view, r.req);
      case "hashKV": return hashKV(this.mvcc, r.req.revision);
      case "revokeKeys": return runRevokeKeys(view, r.req);
    }
  }

  private ship(view: TxnView, result: KvResult, replyTo: number | undefined): Promise<Executed> {
    const writes = [...view.writes.values()];
    const buckets = this.replica.buckets;
    for (const w of writes) {
      if (w.value === null) buckets.delete(w.key);
      else buckets.put(w.key, w.value);
    }
    const changes = buckets.commit();
    const seq = ++this.seq;
    for (const c of changes) if (!buckets.owns(c.bucket)) this.foreignSeq.set(c.bucket, seq);
    const keys = writes.map((w) => w.key);
    for (const k of keys) this.pendingKeys.set(k, (this.pendingKeys.get(k) ?? 0) + 1);
    const reply = replyTo !== undefined && view.settled ? { seq, id: replyTo, result } : undefined;
    const done = new Promise<Executed>((resolve) => {
      this.pending.set(seq, {
        keys,
        finish: (rev) => {
          view.assign(rev);
          resolve({ revision: rev, result, replied: reply !== undefined });
        },
      });
    });
    this.send({ actor: this.replica.actor, seq, changes, writes }, reply);
    return done;
  }

  /** Applies the backend's entries; completes this frontend's own requests among them. */
  onApplied(entries: AppliedEntry[]): void {
    this.replica.apply(entries);
    for (const e of entries) {
      if (e.actor !== this.replica.actor) continue;
      const p = this.pending.get(e.seq!);
      if (!p) continue;
      this.pending.delete(e.seq!);
      for (const k of p.keys) {
        const n = this.pendingKeys.get(k)! - 1;
        if (n === 0) this.pendingKeys.delete(k);
        else this.pendingKeys.set(k, n);
      }
      p.finish(e.rev);
    }
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }

  onCompact(rev: number): void {
    if (rev > this.mvcc.compactRev) this.mvcc.compact(rev);
  }

  private nextApplied(): Promise<void> {
    return new Promise((r) => this.wakers.push(r));
  }

  private anyPending(reads: (k: string) => boolean): boolean {
    for (const k of this.pendingKeys.keys()) if (reads(k)) return true;
    return false;
  }

  get inflight(): number {
    return this.pending.size;
  }
}

/**
 * A crc32 chained over every live (key, value, lease) at the revision, in key
 * order. Revisions are left out on purpose: they are each server's own, and
 * two servers holding the same keys and values must give the same hash.
 */
export function hashKV(mvcc: MvccStore, revision: number): HashKVResult {
  const rev = mvcc.checkReadable(revision);
  let hash = 0;
  const lease = Buffer.alloc(8);
  for (const kv of mvcc.range(RANGE_END_ALL, RANGE_END_ALL, rev)) {
    const key = keyToBytes(kv.key);
    lease.writeBigUInt64BE(BigInt(kv.lease));
    hash = crc32(lengthPrefix(key.length), hash);
    hash = crc32(key, hash);
    hash = crc32(lengthPrefix(kv.value.length), hash);
    hash = crc32Chained(kv.value, hash);
    hash = crc32(lease, hash);
  }
  return { hash, compactRevision: mvcc.compactRev };
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** Buckets a write request may write, judged on the current state (both Txn branches). */
function candidateBuckets(mvcc: MvccStore, r: KvRequest): number[] {
  const out: number[] = [];
  const addOp = (op: RequestOp) => {
    if ("put" in op) out.push(bucketOf(op.put.key));
    else if ("deleteRange" in op) for (const k of mvcc.liveKeys(op.deleteRange.key, op.deleteRange.rangeEnd)) out.push(bucketOf(k));
    else if ("txn" in op) {
      for (const o of op.txn.success) addOp(o);
      for (const o of op.txn.failure) addOp(o);
    }
  };
  if (r.kind === "put") addOp({ put: r.req });
  else if (r.kind === "deleteRange") addOp({ deleteRange: r.req });
  else if (r.kind === "txn") addOp({ txn: r.req });
  else if (r.kind === "revokeKeys") for (const k of r.req.keys) out.push(bucketOf(k));
  return out;
}

/** Keys whose current state a write request reads (null: it reads none). */
function readSet(r: KvRequest): ((k: string) => boolean) | null {
  const ranges: [string, string][] = [];
  const addOp = (op: RequestOp) => {
    if ("put" in op) {
      if (op.put.prevKv || op.put.ignoreValue || op.put.ignoreLease) ranges.push([op.put.key, ""]);
    } else if ("deleteRange" in op) ranges.push([op.deleteRange.key, op.deleteRange.rangeEnd]);
    else if ("range" in op) ranges.push([op.range.key, op.range.rangeEnd]);
    else addTxn(op.txn);
  };
  const addTxn = (t: TxnRequest) => {
    for (const c of t.compare) ranges.push([c.key, c.rangeEnd]);
    for (const op of t.success) addOp(op);
    for (const op of t.failure) addOp(op);
  };
  if (r.kind === "put") addOp({ put: r.req });
  else if (r.kind === "deleteRange") addOp({ deleteRange: r.req });
  else if (r.kind === "txn") addTxn(r.req);
  else if (r.kind === "revokeKeys") {
    const keys = new Set<string>(r.req.keys);
    return (k) => keys.has(k);
  }
  if (ranges.length === 0) return null;
  return (k) => ranges.some(([key, end]) => inRange(k, key, end));
}

export function runRange(view: TxnView, r: RangeRequest): RangeResult {
  const rev = view.mvcc.checkReadable(r.revision);
  let kvs = view.range(r.key, r.rangeEnd, rev === view.mvcc.rev ? 0 : rev);
  const count = kvs.length;
  kvs = kvs.filter((kv) =>
    (r.minModRevision === 0 || kv.mod >= r.minModRevision) &&
    (r.maxModRevision === 0 || kv.mod <= r.maxModRevision) &&
    (r.minCreateRevision === 0 || kv.create >= r.minCreateRevision) &&
    (r.maxCreateRevision === 0 || kv.create <= r.maxCreateRevision));
  let order = r.sortOrder;
  if (r.sortTarget !== "KEY" && order === "NONE") order = "ASCEND"; // etcd: only key order comes for free
  if (order !== "NONE" && r.sortTarget !== "KEY") {
    // Ties stay in key order in both directions, as etcd's (stable for small results) sort.Reverse.
    const field = sortField(r.sortTarget);
    const sign = order === "DESCEND" ? -1 : 1;
    kvs.sort((a, b) => sign * field(a, b) || (a.key < b.key ? -1 : 1));
  } else if (order === "DESCEND") kvs.reverse();
  let more = false;
  if (r.limit > 0 && kvs.length > r.limit && !r.countOnly) { // etcd: count_only returns no kvs, so never `more`
    kvs = kvs.slice(0, r.limit);
    more = true;
  }
  if (r.countOnly) kvs = [];
  else if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
  return { kvs, more, count };
}

function sortField(t: RangeRequest["sortTarget"]): (a: KeyValue, b: KeyValue) => number {
  switch (t) {
    case "VERSION": return (a, b) => a.version - b.version;
    case "CREATE": return (a, b) => a.create - b.create;
    case "MOD": return (a, b) => a.mod - b.mod;
    case "VALUE": return (a, b) => Buffer.compare(a.value, b.value);
    case "KEY": return (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }
}

function runPut(view: TxnView, r: PutRequest): PutResult {
  const prev = view.get(r.key);
  if ((r.ignoreValue || r.ignoreLease) && !prev) throw new MergekvError("KeyNotFound");
  if (!r.ignoreLease && r.lease !== 0 && !view.leaseExists(r.lease)) throw new MergekvError("LeaseNotFound");
  view.put(r.key, r.ignoreValue ? prev!.value : r.value, r.ignoreLease ? prev!.lease : r.lease);
  return r.prevKv && prev ? { prevKv: prev } : {};
}

function runRevokeKeys(view: TxnView, r: RevokeKeysRequest): RevokeKeysResult {
  let deleted = 0;
  for (const key of r.keys) {
    if (view.get(key)?.lease !== r.lease) continue; // deleted or re-put meanwhile: no longer the lease's
    view.delete(key);
    deleted++;
  }
  return { deleted };
}

function runDelete(view: TxnView, r: DeleteRangeRequest): DeleteRangeResult {
  const doomed = view.range(r.key, r.rangeEnd);
  for (const kv of doomed) view.delete(kv.key);
  return { deleted: doomed.length, prevKvs: r.prevKv ? doomed : [] };
}

/** etcd evaluates every compare on the path (nested ones included) before any write. */
function runTxn(view: TxnView, t: TxnRequest): TxnResult {
  const path = choosePath(view, t);
  return execPath(view, t, path);
}

interface Path { succeeded: boolean; children: Path[] }

function choosePath(view: TxnView, t: TxnRequest): Path {
  const succeeded = t.compare.every((c) => compareHolds(view, c));
  const ops = succeeded ? t.success : t.failure;
  return { succeeded, children: ops.filter((op): op is { txn: TxnRequest } => "txn" in op).map((op) => choosePath(view, op.txn)) };
}

function execPath(view: TxnView, t: TxnRequest, path: Path): TxnResult {
  const ops = path.succeeded ? t.success : t.failure;
  let child = 0;
  const responses: OpResult[] = ops.map((op) => {
    if ("range" in op) return { range: runRange(view, op.range) };
    if ("put" in op) return { put: runPut(view, op.put) };
    if ("deleteRange" in op) return { deleteRange: runDelete(view, op.deleteRange) };
    return { txn: execPath(view, op.txn, path.children[child++]) };
  });
  return { succeeded: path.succeeded, responses };
}

const ABSENT: KeyValue = { key: "" as KeyString, create: 0, mod: 0, version: 0, value: new Uint8Array(0), lease: 0 };

function compareHolds(view: TxnView, c: Compare): boolean {
  const kvs = c.rangeEnd === "" ? [view.get(c.key)].filter((kv): kv is KeyValue => !!kv) : view.range(c.key, c.rangeEnd);
  if (kvs.length === 0) return c.target === "VALUE" ? false : compareKv(c, ABSENT);
  return kvs.every((kv) => compareKv(c, kv));
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let cmp: number;
  switch (c.target) {
    case "VALUE": cmp = Buffer.compare(kv.value, c.value); break;
    case "VERSION": cmp = Math.sign(kv.version - c.number); break;
    case "CREATE": cmp = Math.sign(kv.create - c.number); break;
    case "MOD": cmp = Math.sign(kv.mod - c.number); break;
    case "LEASE": cmp = Math.sign(kv.lease - c.number); break;
  }
  switch (c.result) {
    case "EQUAL": return cmp === 0;
    case "NOT_EQUAL": return cmp !== 0;
    case "GREATER": return cmp > 0;
    case "LESS": return cmp < 0;
  }
}
