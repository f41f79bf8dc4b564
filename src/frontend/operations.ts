/**
 * What each request does, evaluated against a TxnView (the frontend's MVCC
 * store with the request's own writes overlaid), as etcd evaluates it. Pure:
 * the Executor decides when a request may run and ships what it wrote.
 */
import { crc32 } from "node:zlib";
import { crc32Chained } from "../persist/records";
import { KeyValue, MvccStore, RANGE_END_ALL } from "../backend/mvcc";
import { KeyString, keyToBytes } from "../persist/encoding";
import { TxnView } from "./txn-view";
import { MergekvError } from "../errors";
import {
  Compare, DeleteRangeRequest, DeleteRangeResult, HashKVResult, KvRequest, KvResult, OpResult, PutRequest, PutResult,
  RangeRequest, RangeResult, RevokeKeysRequest, RevokeKeysResult, TxnRequest, TxnResult,
} from "./requests";

/** Runs `r` on `view`: reads what it reads, and records its writes in `view.writes`. */
export function runRequest(view: TxnView, r: KvRequest): KvResult {
  switch (r.kind) {
    case "put": return runPut(view, r.req);
    case "deleteRange": return runDelete(view, r.req);
    case "txn": return runTxn(view, r.req);
    case "range": return runRange(view, r.req);
    case "hashKV": return hashKV(view.mvcc, r.req.revision);
    case "revokeKeys": return runRevokeKeys(view, r.req);
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
