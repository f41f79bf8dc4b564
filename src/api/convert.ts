/**
 * Wire <-> engine conversion for etcd's KV messages (proto-loader objects:
 * snake_case fields, int64 as decimal strings, enums as CamelCase names).
 */
import { KeyValue } from "../backend/mvcc";
import { KeyString, keyToString, keyToBytes } from "../persist/encoding";
import { MergekvError } from "../errors";
import {
  Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResult, OpResult, PutRequest, PutResult,
  RangeRequest, RangeResult, RequestOp, SortOrder, SortTarget, TxnRequest, TxnResult,
} from "../frontend/requests";

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Wire = Record<string, any>;

const EMPTY = Buffer.alloc(0);

/** int64 from the wire (string or number) to a safe JS number; etcd's revisions and counts fit. */
export function int(v: unknown, field: string): number {
  if (v === undefined || v === null || v === "") return 0;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw new MergekvError("InvalidArgument", `mergekv: ${field} ${String(v)} is out of range`);
  return n;
}

/** Stands for a lease id no lease can have (mergekv grants only ids in 1..2^48). */
export const LEASE_ID_NONE = -1;

/**
 * A lease id from the wire. Any int64 is valid in etcd; one beyond 2^53 cannot
 * name a lease here, so it becomes LEASE_ID_NONE and gets etcd's answers for an
 * unknown lease (not found, TTL -1, keep-alive TTL 0) rather than an error.
 */
export function leaseId(v: unknown): number {
  const n = v === undefined || v === null || v === "" ? 0 : Number(v);
  return Number.isSafeInteger(n) ? n : LEASE_ID_NONE;
}

/**
 * Bytes from a decoded message, in an allocation of their own. The decoder
 * hands out views into the whole received buffer (often an 8 KiB slab of
 * Node's pool): kept, such a view pins the slab, and a postMessage to a
 * frontend copies the slab whole.
 */
export function bytes(b: unknown): Uint8Array {
  if (!(b instanceof Uint8Array) || b.byteLength === 0) return EMPTY;
  return b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}
/** A key (or range end) from a decoded message; absent is the empty key. */
export const key = (b: unknown): KeyString => keyToString(bytes(b));

function pick<T extends string>(v: unknown, table: Record<string, T>, field: string): T {
  const name = String(v ?? Object.keys(table)[0]);
  const out = table[name];
  if (!out) throw new MergekvError("InvalidArgument", `mergekv: unknown ${field} ${name}`);
  return out;
}

const SORT_ORDER: Record<string, SortOrder> = { None: "NONE", Ascend: "ASCEND", Descend: "DESCEND" };
const SORT_TARGET: Record<string, SortTarget> = { Key: "KEY", Version: "VERSION", Create: "CREATE", Mod: "MOD", Value: "VALUE" };
const CMP_RESULT: Record<string, CompareResult> = { Equal: "EQUAL", Greater: "GREATER", Less: "LESS", NotEqual: "NOT_EQUAL" };
const CMP_TARGET: Record<string, CompareTarget> = { Version: "VERSION", Create: "CREATE", Mod: "MOD", Value: "VALUE", Lease: "LEASE" };

export function toRange(w: Wire): RangeRequest {
  return {
    key: key(w.key),
    rangeEnd: key(w.range_end),
    limit: int(w.limit, "limit"),
    revision: int(w.revision, "revision"),
    sortOrder: pick(w.sort_order, SORT_ORDER, "sort_order"),
    sortTarget: pick(w.sort_target, SORT_TARGET, "sort_target"),
    serializable: !!w.serializable,
    keysOnly: !!w.keys_only,
    countOnly: !!w.count_only,
    minModRevision: int(w.min_mod_revision, "min_mod_revision"),
    maxModRevision: int(w.max_mod_revision, "max_mod_revision"),
    minCreateRevision: int(w.min_create_revision, "min_create_revision"),
    maxCreateRevision: int(w.max_create_revision, "max_create_revision"),
  };
}

export function toPut(w: Wire): PutRequest {
  return {
    key: key(w.key),
    value: bytes(w.value),
    lease: leaseId(w.lease),
    prevKv: !!w.prev_kv,
    ignoreValue: !!w.ignore_value,
    ignoreLease: !!w.ignore_lease,
  };
}

export function toDeleteRange(w: Wire): DeleteRangeRequest {
  return { key: key(w.key), rangeEnd: key(w.range_end), prevKv: !!w.prev_kv };
}

function toCompare(w: Wire): Compare {
  const target = pick(w.target, CMP_TARGET, "compare target");
  const field = { VERSION: "version", CREATE: "create_revision", MOD: "mod_revision", VALUE: "value", LEASE: "lease" }[target];
  return {
    key: key(w.key),
    rangeEnd: key(w.range_end),
    target,
    result: pick(w.result, CMP_RESULT, "compare result"),
    number: target === "VALUE" ? 0 : int(w[field], field),
    value: target === "VALUE" ? bytes(w.value) : EMPTY,
  };
}

function toOp(w: Wire): RequestOp {
  if (w.request_range) return { range: toRange(w.request_range) };
  if (w.request_put) return { put: toPut(w.request_put) };
  if (w.request_delete_range) return { deleteRange: toDeleteRange(w.request_delete_range) };
  if (w.request_txn) return { txn: toTxn(w.request_txn) };
  throw new MergekvError("KeyNotFound"); // etcd's answer to an empty RequestOp
}

export function toTxn(w: Wire): TxnRequest {
  return {
    compare: (w.compare ?? []).map(toCompare),
    success: (w.success ?? []).map(toOp),
    failure: (w.failure ?? []).map(toOp),
  };
}

/**
 * int64 fields go out as JS numbers (revisions, versions, counts and our
 * lease ids are safe integers): protobufjs parses decimal strings into Longs
 * on every encode, which the watch profile showed as the top function.
 */
export function fromKv(kv: KeyValue): Wire {
  return {
    key: keyToBytes(kv.key),
    create_revision: kv.create,
    mod_revision: kv.mod,
    version: kv.version,
    value: Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength),
    lease: kv.lease,
  };
}

export function fromRange(r: RangeResult): Wire {
  return { kvs: r.kvs.map(fromKv), more: r.more, count: r.count };
}

export function fromPut(r: PutResult): Wire {
  return r.prevKv ? { prev_kv: fromKv(r.prevKv) } : {};
}

export function fromDeleteRange(r: DeleteRangeResult): Wire {
  return { deleted: r.deleted, prev_kvs: r.prevKvs.map(fromKv) };
}

/**
 * A Txn's answer with each inner response's header as etcd 3.4 fills it:
 * the revision the Txn started at, plus one once it has changed something
 * (a put, or a delete that deleted), counting a put or delete's own change
 * and not a range's (a range before the first write reports the old
 * revision); a nested Txn's own header stays empty (revision 0). Found by
 * the differential test against etcd. `revision`: the Txn's (its new one if
 * it wrote, else the current one).
 */
export function fromTxn(r: TxnResult, revision: number): Wire {
  const begin = txnChanged(r) ? revision - 1 : revision;
  let changed = false;
  const header = () => ({ revision: changed ? begin + 1 : begin });
  const walk = (t: TxnResult): Wire => ({
    succeeded: t.succeeded,
    responses: t.responses.map((o): Wire => {
      if ("range" in o) return { response_range: { header: header(), ...fromRange(o.range) } };
      if ("put" in o) {
        changed = true;
        return { response_put: { header: header(), ...fromPut(o.put) } };
      }
      if ("deleteRange" in o) {
        if (o.deleteRange.deleted > 0) changed = true;
        return { response_delete_range: { header: header(), ...fromDeleteRange(o.deleteRange) } };
      }
      return { response_txn: { header: { revision: 0 }, ...walk(o.txn) } };
    }),
  });
  return walk(r);
}

/** Whether a Txn changed anything: a put, or a delete that deleted, at any depth. */
function txnChanged(t: TxnResult): boolean {
  return t.responses.some((o) => "put" in o || ("deleteRange" in o && o.deleteRange.deleted > 0) || ("txn" in o && txnChanged(o.txn)));
}
