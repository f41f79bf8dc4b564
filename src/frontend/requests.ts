/**
 * etcd's KV requests and results in mergekv's own terms: revisions as numbers,
 * keys as binary strings, values as bytes. The gRPC layer converts to and
 * from the wire; frontends execute these.
 */
import { KeyString } from "../persist/encoding";
import { KeyValue } from "../backend/mvcc";

export type SortOrder = "NONE" | "ASCEND" | "DESCEND";
export type SortTarget = "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";

export interface RangeRequest {
  key: KeyString;
  rangeEnd: KeyString;
  limit: number;
  revision: number;
  sortOrder: SortOrder;
  sortTarget: SortTarget;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
}

export interface PutRequest {
  key: KeyString;
  value: Uint8Array;
  lease: number;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

/** A Range as etcd's defaults make it (the key alone, no limit, the current revision, linearizable), with `o` over them. */
export function rangeOf(key: KeyString, o: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key, rangeEnd: "" as KeyString, limit: 0, revision: 0, sortOrder: "NONE", sortTarget: "KEY", serializable: false, keysOnly: false,
    countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0, ...o,
  };
}

/** A Put as etcd's defaults make it (no lease, no prev_kv), with `o` over them. */
export function putOf(key: KeyString, value: Uint8Array, o: Partial<PutRequest> = {}): PutRequest {
  return { key, value, lease: 0, prevKv: false, ignoreValue: false, ignoreLease: false, ...o };
}

export interface DeleteRangeRequest {
  key: KeyString;
  rangeEnd: KeyString;
  prevKv: boolean;
}

export type CompareTarget = "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";
export type CompareResult = "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";

export interface Compare {
  key: KeyString;
  rangeEnd: KeyString;
  target: CompareTarget;
  result: CompareResult;
  /** The operand: a number for VERSION/CREATE/MOD/LEASE, bytes for VALUE. */
  number: number;
  value: Uint8Array;
}

export type RequestOp =
  | { range: RangeRequest }
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest };

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface RangeResult {
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutResult {
  prevKv?: KeyValue;
}

export interface DeleteRangeResult {
  deleted: number;
  prevKvs: KeyValue[];
}

export interface TxnResult {
  succeeded: boolean;
  responses: OpResult[];
}

export type OpResult =
  | { range: RangeResult }
  | { put: PutResult }
  | { deleteRange: DeleteRangeResult }
  | { txn: TxnResult };

/** Maintenance.HashKV: a hash of the live keys and values at a revision (0 = current). */
export interface HashKVRequest {
  revision: number;
}

export interface HashKVResult {
  hash: number;
  compactRevision: number;
}

/** A request a frontend executes; reads and writes alike. */
export type KvRequest =
  | { kind: "range"; req: RangeRequest }
  | { kind: "hashKV"; req: HashKVRequest }
  | { kind: "put"; req: PutRequest }
  | { kind: "deleteRange"; req: DeleteRangeRequest }
  | { kind: "txn"; req: TxnRequest }
  | { kind: "revokeKeys"; req: RevokeKeysRequest };

export type KvResult = RangeResult | PutResult | DeleteRangeResult | TxnResult | HashKVResult | RevokeKeysResult;

/**
 * Internal (no gRPC request maps to it): deletes, as one write request, every
 * key of `keys` still attached to `lease`. A revoked or expired lease's keys
 * are deleted this way by the frontend that owns them, which holds their
 * documents, instead of the backend loading one document per key.
 */
export interface RevokeKeysRequest {
  keys: KeyString[];
  lease: number;
}

export interface RevokeKeysResult {
  deleted: number;
}

/** etcd's default limit on operations in one Txn, each of compare, success, failure (--max-txn-ops). */
export const TXN_OPS_MAX = 128;
