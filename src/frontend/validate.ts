/**
 * Request checks that need no state, with etcd's errors, in etcd's order
 * (etcdserver/api/v3rpc/key.go: checkRangeRequest, checkPutRequest, checkTxnRequest).
 */
import { MergekvError } from "../errors";
import { RANGE_END_ALL } from "../backend/mvcc";
import { DeleteRangeRequest, KvRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TXN_OPS_MAX } from "./requests";

/** `txnOpsMax`: the server's --max-txn-ops. */
export function validateRequest(r: KvRequest, txnOpsMax = TXN_OPS_MAX): void {
  switch (r.kind) {
    case "range": return checkRange(r.req);
    case "put": return checkPut(r.req);
    case "deleteRange": return checkDelete(r.req);
    case "txn": return checkTxn(r.req, txnOpsMax);
    case "hashKV": return;
    case "revokeKeys": return;
  }
}

function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw new MergekvError("KeyNotProvided");
}

function checkPut(r: PutRequest): void {
  if (r.key.length === 0) throw new MergekvError("KeyNotProvided");
  if (r.ignoreValue && r.value.length !== 0) throw new MergekvError("ValueProvided");
  if (r.ignoreLease && r.lease !== 0) throw new MergekvError("LeaseProvided");
}

function checkDelete(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw new MergekvError("KeyNotProvided");
}

/** Duplicate keys are checked once, at the top level, after every op is (as etcd's Txn handler). */
function checkTxn(t: TxnRequest, txnOpsMax: number): void {
  checkTxnOps(t, txnOpsMax);
  checkIntervals(t.success);
  checkIntervals(t.failure);
}

/** etcd's checkTxnRequest: a nested Txn may use only what its parent's widest list left of `opsMax`. */
function checkTxnOps(t: TxnRequest, opsMax: number): void {
  const ops = Math.max(t.compare.length, t.success.length, t.failure.length);
  if (ops > opsMax) throw new MergekvError("TooManyOps");
  for (const c of t.compare) if (c.key.length === 0) throw new MergekvError("KeyNotProvided");
  for (const op of t.success.concat(t.failure)) checkOp(op, opsMax - ops);
}

function checkOp(op: RequestOp, opsMax: number): void {
  if ("range" in op) checkRange(op.range);
  else if ("put" in op) checkPut(op.put);
  else if ("deleteRange" in op) checkDelete(op.deleteRange);
  else checkTxnOps(op.txn, opsMax);
}

/** A half-open key interval; end "" = the point key; end "\0" = unbounded. */
interface Interval { start: string; end: string }

/**
 * Whether a delete's range holds a key, for the duplicate check as etcd 3.4
 * makes it: its interval for a range_end of "\0" (from the key on) ends at
 * the key "\0", so it holds nothing, and a Txn may put a key that its own
 * from-key delete also deletes. Both writes apply, in op order, at one
 * revision (a delete then a put: the key created anew; a put then a
 * delete: gone), each an event (found by the differential test;
 * REDESIGN.md, "Errors").
 */
function contains(iv: Interval, key: string): boolean {
  if (iv.end === "") return key === iv.start;
  if (iv.end === RANGE_END_ALL) return false;
  return key >= iv.start && key < iv.end;
}

/**
 * etcd's duplicate-key rule: within one branch a key may be put once, and
 * never inside a range the branch deletes; a nested Txn's then and else may
 * put the same key (only one of them runs). Returns (puts, deletes) of the level.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) if ("deleteRange" in op) dels.push({ start: op.deleteRange.key, end: op.deleteRange.rangeEnd });
  const puts = new Set<string>();
  const dup = (k: string) => dels.some((iv) => contains(iv, k));
  for (const op of ops) {
    if (!("txn" in op)) continue;
    const then = checkIntervals(op.txn.success);
    const otherwise = checkIntervals(op.txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || dup(k)) throw new MergekvError("DuplicateKey");
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || dup(k)) throw new MergekvError("DuplicateKey");
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (!("put" in op)) continue;
    const k = op.put.key;
    if (puts.has(k) || dup(k)) throw new MergekvError("DuplicateKey");
    puts.add(k);
  }
  return { puts, dels };
}
