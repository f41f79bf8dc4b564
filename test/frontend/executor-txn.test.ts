import { FakeBackend, compare, kvSummary as kvOf, errorCode, op, text } from "../helpers/frontend";
import { CompareResult, CompareTarget, RequestOp, TXN_OPS_MAX } from "../../src/frontend/requests";

let backend: FakeBackend;
beforeEach(() => { backend = new FakeBackend(); });

const RESULTS: CompareResult[] = ["EQUAL", "NOT_EQUAL", "GREATER", "LESS"];

/** What a compare of `actual` against `operand` must say, from the result's meaning. */
function holds(result: CompareResult, actual: number, operand: number): boolean {
  switch (result) {
    case "EQUAL": return actual === operand;
    case "NOT_EQUAL": return actual !== operand;
    case "GREATER": return actual > operand;
    case "LESS": return actual < operand;
  }
}

async function succeeded(...compares: ReturnType<typeof compare>[]): Promise<boolean> {
  return (await backend.txn({ compare: compares })).result.succeeded;
}

describe("Txn compares", () => {
  /* "k": created at 1, modified at 3, version 2, value "m", lease 0. */
  beforeEach(async () => { await backend.putAll([["k", "a"], ["other", "x"], ["k", "m"]]); });

  const NUMERIC: [CompareTarget, number][] = [["VERSION", 2], ["CREATE", 1], ["MOD", 3], ["LEASE", 0]];
  for (const [target, actual] of NUMERIC) {
    test(`${target} compares against the key's ${target.toLowerCase()} (${actual}) for every result`, async () => {
      for (const result of RESULTS) {
        for (const operand of [actual - 1, actual, actual + 1]) {
          expect([result, operand, await succeeded(compare("k", target, result, operand))]).toEqual([result, operand, holds(result, actual, operand)]);
        }
      }
    });
  }

  test("VALUE compares bytes for every result", async () => {
    const order = (operand: string) => Math.sign(Buffer.compare(Buffer.from("m"), Buffer.from(operand)));
    for (const result of RESULTS) {
      for (const operand of ["l", "m", "mm", "n", ""]) {
        expect([result, operand, await succeeded(compare("k", "VALUE", result, operand))]).toEqual([result, operand, holds(result, order(operand), 0)]);
      }
    }
  });

  test("on a missing key VALUE is always false; the others compare against 0 (CREATE == 0 means absent)", async () => {
    for (const result of RESULTS) expect(await succeeded(compare("missing", "VALUE", result, ""))).toBe(false);
    for (const target of ["VERSION", "CREATE", "MOD", "LEASE"] as CompareTarget[]) {
      for (const result of RESULTS) {
        for (const operand of [0, 1]) expect([target, result, operand, await succeeded(compare("missing", target, result, operand))]).toEqual([target, result, operand, holds(result, 0, operand)]);
      }
    }
    expect(await succeeded(compare("k", "CREATE", "EQUAL", 0))).toBe(false);
  });

  test("a range compare needs every key in the range to match; an empty range compares as absent", async () => {
    await backend.putAll([["r1", "same"], ["r2", "same"]]);
    expect(await succeeded(compare("r", "VALUE", "EQUAL", "same", "s"))).toBe(true);
    await backend.put("r3", "different");
    expect(await succeeded(compare("r", "VALUE", "EQUAL", "same", "s"))).toBe(false);
    expect(await succeeded(compare("r", "VERSION", "EQUAL", 1, "s"))).toBe(true);
    expect(await succeeded(compare("z", "CREATE", "EQUAL", 0, "zz"))).toBe(true);
    expect(await succeeded(compare("z", "VALUE", "NOT_EQUAL", "x", "zz"))).toBe(false);
    expect(await succeeded(compare("r3", "VALUE", "EQUAL", "different", "\0"))).toBe(true);
  });

  test("all compares must hold: one false compare runs the failure branch", async () => {
    const result = await backend.txn({
      compare: [compare("k", "VALUE", "EQUAL", "m"), compare("other", "VERSION", "GREATER", 5)],
      success: [op.put("chosen", "success")],
      failure: [op.put("chosen", "failure")],
    });
    expect(result.result.succeeded).toBe(false);
    expect(text((await backend.range("chosen")).result.kvs[0].value)).toBe("failure");
  });
});

describe("Txn execution", () => {
  test("every write of a txn shares one revision; later ops see earlier ones", async () => {
    await backend.put("a", "old");
    const result = await backend.txn({ success: [op.put("a", "new"), op.range("a"), op.put("n", "v"), op.range("n"), op.deleteRange("gone")] });
    expect(result.revision).toBe(2);
    const [, rangeA, , rangeN, deleted] = result.result.responses;
    expect("range" in rangeA && rangeA.range.kvs.map(kvOf)).toEqual([{ key: "a", create: 1, mod: 2, version: 2, value: "new", lease: 0 }]);
    expect("range" in rangeN && rangeN.range.kvs.map(kvOf)).toEqual([{ key: "n", create: 2, mod: 2, version: 1, value: "v", lease: 0 }]);
    expect("deleteRange" in deleted && deleted.deleteRange.deleted).toBe(0);
    expect(backend.envelopes).toBe(2);
  });

  test("the txn's own writes sort and filter as the newest revision (a lock's oldest-waiter read after its put)", async () => {
    await backend.putAll([["lock/a", ""], ["lock/c", "old"]]);
    const oldest = { rangeEnd: "lock0", sortTarget: "CREATE", sortOrder: "ASCEND", limit: 1 } as const;
    const result = await backend.txn({
      success: [
        op.put("lock/b", ""), op.put("lock/c", "new"), op.range("lock/", oldest),
        op.range("lock/", { rangeEnd: "lock0", sortTarget: "MOD", sortOrder: "DESCEND" }),
        op.range("lock/", { rangeEnd: "lock0", minCreateRevision: 2 }),
      ],
    });
    expect(result.revision).toBe(3);
    const [, , first, byMod, created] = result.result.responses.map((r) => ("range" in r ? r.range.kvs.map(kvOf) : []));
    expect(first).toEqual([{ key: "lock/a", create: 1, mod: 1, version: 1, value: "", lease: 0 }]);
    expect(byMod.map((kv) => [kv!.key, kv!.mod])).toEqual([["lock/b", 3], ["lock/c", 3], ["lock/a", 1]]);
    expect(created.map((kv) => [kv!.key, kv!.create])).toEqual([["lock/b", 3], ["lock/c", 2]]);
  });

  test("DeleteRange with prev_kv inside a txn returns the deleted kvs", async () => {
    await backend.putAll([["d1", "1"], ["d2", "2"]]);
    const result = await backend.txn({ success: [op.deleteRange("d", "e", true)] });
    const [response] = result.result.responses;
    expect("deleteRange" in response && response.deleteRange.prevKvs.map((kv) => kv.key)).toEqual(["d1", "d2"]);
    expect(result.revision).toBe(3);
    expect((await backend.range("d", { rangeEnd: "e" })).result.count).toBe(0);
  });

  test("a nested txn's compares see the state before the txn (etcd picks the path first)", async () => {
    await backend.put("k", "old");
    const result = await backend.txn({
      success: [op.put("k", "new"), op.txn({ compare: [compare("k", "VALUE", "EQUAL", "new")], success: [op.put("inner", "then")], failure: [op.put("inner", "else")] })],
    });
    const nested = result.result.responses[1];
    expect("txn" in nested && nested.txn.succeeded).toBe(false);
    expect(text((await backend.range("inner")).result.kvs[0].value)).toBe("else");
    expect(text((await backend.range("k")).result.kvs[0].value)).toBe("new");
  });

  test("a read-only txn creates no envelope and leaves the revision alone", async () => {
    await backend.put("k", "v");
    const readOnly = await backend.txn({ compare: [compare("k", "VERSION", "EQUAL", 1)], success: [op.range("k")], failure: [op.put("k", "w")] });
    expect(readOnly.result.succeeded).toBe(true);
    expect([readOnly.revision, backend.envelopes, backend.revision]).toEqual([1, 1, 1]);
    const emptyBranch = await backend.txn({ compare: [compare("k", "VERSION", "EQUAL", 9)], success: [op.put("k", "w")] });
    expect([emptyBranch.result.succeeded, emptyBranch.revision, backend.envelopes]).toEqual([false, 1, 1]);
  });

  test("an error in the chosen branch fails the whole txn and writes nothing", async () => {
    const failing = backend.txn({ success: [op.put("written", "v"), op.put("missing", "", { ignoreValue: true })] });
    expect(await errorCode(failing)).toBe("KeyNotFound");
    expect(await errorCode(backend.txn({ success: [op.put("written", "v"), op.put("leased", "v", { lease: 7 })] }))).toBe("LeaseNotFound");
    expect((await backend.range("written")).result.count).toBe(0);
    expect(backend.envelopes).toBe(0);
  });
});

describe("Txn validation", () => {
  const puts = (count: number, prefix = "k"): RequestOp[] => Array.from({ length: count }, (_, i) => op.put(`${prefix}${i}`, "v"));
  const compares = (count: number) => Array.from({ length: count }, (_, i) => compare(`k${i}`, "VERSION", "EQUAL", 0));

  test(`up to ${TXN_OPS_MAX} ops per list are allowed; more is TooManyOps`, async () => {
    expect((await backend.txn({ success: puts(TXN_OPS_MAX) })).revision).toBe(1);
    expect(await errorCode(backend.txn({ success: puts(TXN_OPS_MAX + 1) }))).toBe("TooManyOps");
    expect(await errorCode(backend.txn({ failure: puts(TXN_OPS_MAX + 1) }))).toBe("TooManyOps");
    expect(await errorCode(backend.txn({ compare: compares(TXN_OPS_MAX + 1) }))).toBe("TooManyOps");
    expect(backend.envelopes).toBe(1);
  });

  test("the same key put twice in one branch is DuplicateKey", async () => {
    expect(await errorCode(backend.txn({ success: [op.put("k", "1"), op.put("k", "2")] }))).toBe("DuplicateKey");
  });

  test("a put inside a range the branch deletes is DuplicateKey, in either order", async () => {
    expect(await errorCode(backend.txn({ success: [op.deleteRange("a", "c"), op.put("b", "1")] }))).toBe("DuplicateKey");
    expect(await errorCode(backend.txn({ success: [op.put("b", "1"), op.deleteRange("a", "c")] }))).toBe("DuplicateKey");
    expect(await errorCode(backend.txn({ success: [op.deleteRange("b"), op.put("b", "1")] }))).toBe("DuplicateKey");
    expect((await backend.txn({ success: [op.deleteRange("a", "c"), op.put("c", "1")] })).revision).toBe(1);
  });

  test("then and else of a nested txn may put the same key; a put beside the nested txn may not", async () => {
    const nested = op.txn({ success: [op.put("q", "then")], failure: [op.put("q", "else")] });
    expect((await backend.txn({ success: [nested] })).revision).toBe(1);
    expect(await errorCode(backend.txn({ success: [nested, op.put("q", "outer")] }))).toBe("DuplicateKey");
    expect(await errorCode(backend.txn({ success: [op.deleteRange("p", "r"), nested] }))).toBe("DuplicateKey");
  });

  test("the same key in the success and failure branches is allowed", async () => {
    const result = await backend.txn({ compare: [compare("k", "CREATE", "EQUAL", 0)], success: [op.put("k", "s")], failure: [op.put("k", "f")] });
    expect(result.result.succeeded).toBe(true);
  });
});
