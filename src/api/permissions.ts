/**
 * What each KV request needs from the caller's roles, as etcd checks it:
 * read on every range read or compared, write on every key written or
 * deleted, read as well where a previous value is returned.
 */
import { Need } from "../backend/auth";
import { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../frontend/requests";

export const ROOT_ONLY: Need[] = [{ access: "root" }];

export function rangeNeeds(r: RangeRequest): Need[] {
  return [{ access: "read", key: r.key, rangeEnd: r.rangeEnd }];
}

export function putNeeds(r: PutRequest): Need[] {
  const needs: Need[] = [{ access: "write", key: r.key, rangeEnd: "" }];
  if (r.prevKv) needs.push({ access: "read", key: r.key, rangeEnd: "" });
  return needs;
}

export function deleteNeeds(r: DeleteRangeRequest): Need[] {
  const needs: Need[] = [{ access: "write", key: r.key, rangeEnd: r.rangeEnd }];
  if (r.prevKv) needs.push({ access: "read", key: r.key, rangeEnd: r.rangeEnd });
  return needs;
}

/** Using a lease (revoking it, attaching a key to it) needs write on every key it holds, as in etcd. */
export function leaseNeeds(keys: ReadonlySet<string> | undefined): Need[] {
  return keys ? [...keys].map((key) => ({ access: "write" as const, key, rangeEnd: "" })) : [];
}

export function txnNeeds(t: TxnRequest): Need[] {
  const needs: Need[] = t.compare.map((c) => ({ access: "read" as const, key: c.key, rangeEnd: c.rangeEnd }));
  const op = (o: RequestOp): Need[] =>
    "range" in o ? rangeNeeds(o.range) : "put" in o ? putNeeds(o.put) : "deleteRange" in o ? deleteNeeds(o.deleteRange) : txnNeeds(o.txn);
  for (const o of t.success.concat(t.failure)) needs.push(...op(o));
  return needs;
}
