/*
 * Stateless request checks. Every Txn expectation below was also checked
 * against a real etcd 3.4.23 (requests sent with the etcd3 client's raw KV calls).
 */
import { validateRequest } from "../../src/frontend/validate";
import { RequestOp, TXN_OPS_MAX, TxnRequest } from "../../src/frontend/requests";
import { compare, deleteRequest, op, putRequest, rangeRequest } from "../helpers/frontend";
import { codeOf } from "../helpers/errors";
import { RANGE_END_ALL } from "../../src/backend/mvcc";


const txnCode = (request: Partial<TxnRequest>) =>
  codeOf(() => validateRequest({ kind: "txn", req: { compare: [], success: [], failure: [], ...request } }));
const puts = (count: number, prefix: string): RequestOp[] => Array.from({ length: count }, (_, i) => op.put(`${prefix}${i}`, "v"));

describe("single requests", () => {
  test("an empty key is KeyNotProvided", () => {
    expect(codeOf(() => validateRequest({ kind: "range", req: rangeRequest("") }))).toBe("KeyNotProvided");
    expect(codeOf(() => validateRequest({ kind: "put", req: putRequest("", "v") }))).toBe("KeyNotProvided");
    expect(codeOf(() => validateRequest({ kind: "deleteRange", req: deleteRequest("") }))).toBe("KeyNotProvided");
  });

  test("ignore_value with a value is ValueProvided; ignore_lease with a lease is LeaseProvided", () => {
    expect(codeOf(() => validateRequest({ kind: "put", req: putRequest("k", "v", { ignoreValue: true }) }))).toBe("ValueProvided");
    expect(codeOf(() => validateRequest({ kind: "put", req: putRequest("k", "", { ignoreLease: true, lease: 3 }) }))).toBe("LeaseProvided");
    expect(codeOf(() => validateRequest({ kind: "put", req: putRequest("k", "", { ignoreValue: true, ignoreLease: true }) }))).toBeUndefined();
  });
});

describe("Txn limits", () => {
  test(`each list may hold ${TXN_OPS_MAX} ops, not more`, () => {
    expect(txnCode({ success: puts(TXN_OPS_MAX, "s"), failure: puts(TXN_OPS_MAX, "f") })).toBeUndefined();
    expect(txnCode({ success: puts(TXN_OPS_MAX + 1, "s") })).toBe("TooManyOps");
    expect(txnCode({ failure: puts(TXN_OPS_MAX + 1, "f") })).toBe("TooManyOps");
    expect(txnCode({ compare: Array.from({ length: TXN_OPS_MAX + 1 }, () => compare("k", "VERSION", "EQUAL", 0)) })).toBe("TooManyOps");
  });

  test("a nested txn may use only what its parent's widest list left", () => {
    const nested = (count: number) => op.txn({ success: puts(count, "in") });
    const outer = TXN_OPS_MAX - 29; // 99 puts + the nested txn = 100 ops: 28 left
    expect(txnCode({ success: [...puts(outer, "out"), nested(28)] })).toBeUndefined();
    expect(txnCode({ success: [...puts(outer, "out"), nested(29)] })).toBe("TooManyOps");
  });

  test("ops and compares inside nested txns are checked too", () => {
    expect(txnCode({ success: [op.txn({ compare: [compare("", "VERSION", "EQUAL", 0)] })] })).toBe("KeyNotProvided");
    expect(txnCode({ failure: [op.txn({ success: [op.range("")] })] })).toBe("KeyNotProvided");
    expect(txnCode({ success: [op.txn({ failure: [op.put("k", "v", { ignoreValue: true })] })] })).toBe("ValueProvided");
    expect(txnCode({ compare: [compare("", "VALUE", "EQUAL", "x")] })).toBe("KeyNotProvided");
  });
});

describe("Txn duplicate keys", () => {
  test("one key put twice in a branch, at any depth, is DuplicateKey", () => {
    expect(txnCode({ success: [op.put("d", "1"), op.put("d", "2")] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.txn({ success: [op.put("d", "1"), op.put("d", "2")] })] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.put("d", "1")], failure: [op.put("d", "2")] })).toBeUndefined();
  });

  test("a put inside a range deleted in the same branch is DuplicateKey; outside it is fine", () => {
    expect(txnCode({ success: [op.deleteRange("a", "c"), op.put("b", "1")] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.deleteRange("a", "c"), op.put("a", "1")] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.deleteRange("a", "c"), op.put("c", "1")] })).toBeUndefined();
    expect(txnCode({ success: [op.deleteRange("b"), op.put("b", "1")] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.deleteRange("b"), op.put("b\0", "1")] })).toBeUndefined();
    expect(txnCode({ success: [op.deleteRange("a", "c"), op.range("b")] })).toBeUndefined();
  });

  test("nested then and else may put the same key; beside them, or under an outer delete, they may not", () => {
    const both = op.txn({ success: [op.put("q", "then")], failure: [op.put("q", "else")] });
    const elseOnly = op.txn({ failure: [op.put("q", "else")] });
    expect(txnCode({ success: [both] })).toBeUndefined();
    expect(txnCode({ success: [both, op.put("q", "outer")] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.put("q", "outer"), elseOnly] })).toBe("DuplicateKey");
    expect(txnCode({ success: [op.deleteRange("p", "r"), elseOnly] })).toBe("DuplicateKey");
  });

  test("a from-key delete (range_end \"\\0\") holds no key for the check, before or after the put, at any depth (etcd 3.4)", () => {
    const fromA = op.deleteRange("a", RANGE_END_ALL);
    expect(txnCode({ success: [fromA, op.put("b", "1")] })).toBeUndefined();
    expect(txnCode({ success: [op.put("b", "1"), fromA] })).toBeUndefined();
    expect(txnCode({ success: [op.txn({ success: [fromA] }), op.put("b", "1")] })).toBeUndefined();
    expect(txnCode({ success: [fromA, op.put("b", "1"), op.put("b", "2")] })).toBe("DuplicateKey"); // puts still may not repeat
  });

  test("a nested put followed by a later nested delete over it is allowed (etcd checks puts before sibling deletes)", () => {
    const putQ = op.txn({ success: [op.put("q", "1")] });
    const deleteAround = op.txn({ success: [op.deleteRange("p", "r")] });
    expect(txnCode({ success: [putQ, deleteAround] })).toBeUndefined();
    expect(txnCode({ success: [deleteAround, putQ] })).toBe("DuplicateKey");
  });
});
