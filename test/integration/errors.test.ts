/**
 * etcd's error table for the KV API (docs/etcd-semantics.md), asserted on the
 * exact gRPC status code and details through a raw gRPC client, against
 * mergekv and a real etcd alike. After the bad requests the server must still
 * answer, nothing written before may be lost, and no failed write may have
 * raised the revision.
 */
import { rawClient, grpcError, b, Msg, RawClient } from "../helpers/grpc";
import { serveSuite, Target, TARGETS } from "../helpers/targets";

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const RESOURCE_EXHAUSTED = 8;
const OUT_OF_RANGE = 11;

const KEY_NOT_PROVIDED = "etcdserver: key is not provided";
const KEY_NOT_FOUND = "etcdserver: key not found";
const VALUE_PROVIDED = "etcdserver: value is provided";
const LEASE_PROVIDED = "etcdserver: lease is provided";
const LEASE_NOT_FOUND = "etcdserver: requested lease not found";
const FUTURE_REV = "etcdserver: mvcc: required revision is a future revision";
const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const TOO_LARGE = "etcdserver: request is too large";
const TOO_MANY_OPS = "etcdserver: too many operations in txn request";
const DUPLICATE_KEY = "etcdserver: duplicate key given in txn request";

/** etcd's --max-request-bytes default and its gRPC receive limit (that plus 512 KiB). */
const REQUEST_BYTES_MAX = 1.5 * 1024 * 1024;
const MESSAGE_BYTES_MAX = 2 * 1024 * 1024;
/** etcd's --max-txn-ops default. */
const TXN_OPS_MAX = 128;

const SEED_KEYS = 20;

const put = (key: string, value = "v", extra: Msg = {}): Msg => ({ request_put: { key: b(key), value: b(value), ...extra } });
const puts = (n: number, prefix: string): Msg[] => Array.from({ length: n }, (_, i) => put(`${prefix}${i}`));
const range = (key: string, extra: Msg = {}): Msg => ({ request_range: { key: b(key), ...extra } });
const del = (key: string, rangeEnd?: string): Msg => ({ request_delete_range: { key: b(key), ...(rangeEnd ? { range_end: b(rangeEnd) } : {}) } });

function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) { n = Math.floor(n / 0x80); bytes++; }
  return bytes;
}

/** Encoded size of PutRequest{key, value}: what Go gRPC reports in "larger than max (N vs. M)". */
function putMessageBytes(keyBytes: number, valueBytes: number): number {
  return 1 + varintBytes(keyBytes) + keyBytes + 1 + varintBytes(valueBytes) + valueBytes;
}

describe.each(TARGETS)("etcd error table on %s", (name) => {
  let target: Target;
  let c: RawClient;
  /** What the seed wrote: key -> its kv as first read back. */
  const seeded = new Map<string, Msg>();

  const revision = async (): Promise<number> => Number((await c.call("KV", "Range", { key: b("seed/0") })).header.revision);
  const expectError = async (p: Promise<unknown>, code: number, details: string) => {
    expect(await grpcError(p)).toEqual({ code, details });
  };
  /** Asserts the failing write `call` left the store's revision where it was. */
  const expectRejectedWrite = async (call: () => Promise<unknown>, code: number, details: string) => {
    const before = await revision();
    await expectError(call(), code, details);
    expect(await revision()).toBe(before);
  };

  serveSuite(name, (t) => rawClient(t.endpoint), (t, raw) => { target = t; c = raw; });

  beforeAll(async () => {
    for (let i = 0; i < SEED_KEYS; i++) await c.call("KV", "Put", { key: b(`seed/${i}`), value: b(`value ${i}`) });
    const r = await c.call("KV", "Range", { key: b("seed/"), range_end: b("seed0") });
    for (const kv of r.kvs) seeded.set(kv.key.toString(), kv);
    expect(seeded.size).toBe(SEED_KEYS);
  });


  describe("empty key", () => {
    test("Range, Put and DeleteRange: InvalidArgument, key is not provided", async () => {
      await expectError(c.call("KV", "Range", { key: b("") }), INVALID_ARGUMENT, KEY_NOT_PROVIDED);
      await expectError(c.call("KV", "Range", { key: b(""), range_end: b("z") }), INVALID_ARGUMENT, KEY_NOT_PROVIDED);
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b(""), value: b("x") }), INVALID_ARGUMENT, KEY_NOT_PROVIDED);
      await expectRejectedWrite(() => c.call("KV", "DeleteRange", { key: b("") }), INVALID_ARGUMENT, KEY_NOT_PROVIDED);
    });

    test("inside a Txn: in a compare, a put, a range, a delete, a nested txn", async () => {
      const cases: Msg[] = [
        { compare: [{ key: b(""), target: "Version", result: "Equal", version: "0" }] },
        { success: [put("")] },
        { success: [range("")] },
        { failure: [del("")] },
        { success: [{ request_txn: { success: [put("ok"), put("")] } }] },
      ];
      for (const txn of cases) await expectRejectedWrite(() => c.call("KV", "Txn", txn), INVALID_ARGUMENT, KEY_NOT_PROVIDED);
    });
  });

  describe("ignore_value and ignore_lease", () => {
    test("ignore_value on a missing key: InvalidArgument, key not found", async () => {
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("missing"), ignore_value: true }), INVALID_ARGUMENT, KEY_NOT_FOUND);
      await expectRejectedWrite(() => c.call("KV", "Txn", { success: [put("other"), { request_put: { key: b("missing"), ignore_value: true } }] }), INVALID_ARGUMENT, KEY_NOT_FOUND);
      // The Txn failed as a whole: its first put did not happen.
      expect((await c.call("KV", "Range", { key: b("other") })).kvs).toEqual([]);
    });

    test("ignore_value with a value: InvalidArgument, value is provided (checked before the key's existence)", async () => {
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("seed/1"), value: b("x"), ignore_value: true }), INVALID_ARGUMENT, VALUE_PROVIDED);
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("missing"), value: b("x"), ignore_value: true }), INVALID_ARGUMENT, VALUE_PROVIDED);
    });

    test("ignore_lease with a lease: InvalidArgument, lease is provided; on a missing key: key not found", async () => {
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("seed/1"), value: b("x"), ignore_lease: true, lease: "5" }), INVALID_ARGUMENT, LEASE_PROVIDED);
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("missing"), value: b("x"), ignore_lease: true }), INVALID_ARGUMENT, KEY_NOT_FOUND);
    });

    test("ignore_value on an existing key keeps its value and raises its version", async () => {
      const before = await revision();
      const r = await c.call("KV", "Put", { key: b("iv"), value: b("kept") });
      const again = await c.call("KV", "Put", { key: b("iv"), ignore_value: true, prev_kv: true });
      expect(Number(again.header.revision)).toBe(Number(r.header.revision) + 1);
      expect(Number(r.header.revision)).toBe(before + 1);
      expect(again.prev_kv.value.toString()).toBe("kept");
      const got = (await c.call("KV", "Range", { key: b("iv") })).kvs[0];
      expect(got.value.toString()).toBe("kept");
      expect(got.version).toBe("2");
    });
  });

  describe("leases (none exist)", () => {
    test("a Put with a lease: NotFound, requested lease not found", async () => {
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("leased"), value: b("x"), lease: "12345" }), NOT_FOUND, LEASE_NOT_FOUND);
      await expectRejectedWrite(() => c.call("KV", "Txn", { success: [put("leased", "x", { lease: "77" })] }), NOT_FOUND, LEASE_NOT_FOUND);
      expect((await c.call("KV", "Range", { key: b("leased") })).kvs).toEqual([]);
    });
  });

  describe("revisions", () => {
    test("a future revision on Range, in a Txn and on Compact: OutOfRange, future revision", async () => {
      const rev = await revision();
      await expectError(c.call("KV", "Range", { key: b("seed/1"), revision: String(rev + 1) }), OUT_OF_RANGE, FUTURE_REV);
      await expectError(c.call("KV", "Range", { key: b("seed/"), range_end: b("seed0"), revision: String(rev + 1000) }), OUT_OF_RANGE, FUTURE_REV);
      await expectError(c.call("KV", "Txn", { success: [range("seed/1", { revision: String(rev + 1) })] }), OUT_OF_RANGE, FUTURE_REV);
      await expectRejectedWrite(() => c.call("KV", "Compact", { revision: String(rev + 1) }), OUT_OF_RANGE, FUTURE_REV);
      // The current revision itself is readable.
      const r = await c.call("KV", "Range", { key: b("seed/1"), revision: String(rev) });
      expect(r.kvs[0].value.toString()).toBe("value 1");
    });

    test("a negative revision reads the current one", async () => {
      const r = await c.call("KV", "Range", { key: b("seed/2"), revision: "-1" });
      expect(r.kvs[0].value.toString()).toBe("value 2");
    });

    test("compacted: reading below the compact revision, compacting at or below it again: OutOfRange, compacted", async () => {
      const r1 = Number((await c.call("KV", "Put", { key: b("history"), value: b("one") })).header.revision);
      const r2 = Number((await c.call("KV", "Put", { key: b("history"), value: b("two") })).header.revision);
      const r3 = Number((await c.call("KV", "Put", { key: b("history"), value: b("three") })).header.revision);
      const compacted = await c.call("KV", "Compact", { revision: String(r2) });
      expect(Number(compacted.header.revision)).toBe(r3); // Compact does not raise the revision

      await expectError(c.call("KV", "Range", { key: b("history"), revision: String(r1) }), OUT_OF_RANGE, COMPACTED);
      await expectError(c.call("KV", "Txn", { success: [range("history", { revision: String(r1) })] }), OUT_OF_RANGE, COMPACTED);
      await expectRejectedWrite(() => c.call("KV", "Compact", { revision: String(r2) }), OUT_OF_RANGE, COMPACTED);
      await expectRejectedWrite(() => c.call("KV", "Compact", { revision: String(r1) }), OUT_OF_RANGE, COMPACTED);

      // Exactly at the compact revision still reads; a key written before it keeps its newest value.
      expect((await c.call("KV", "Range", { key: b("history"), revision: String(r2) })).kvs[0].value.toString()).toBe("two");
      expect((await c.call("KV", "Range", { key: b("history"), revision: String(r3) })).kvs[0].value.toString()).toBe("three");
      expect((await c.call("KV", "Range", { key: b("seed/3"), revision: String(r2) })).kvs[0].value.toString()).toBe("value 3");
    });
  });

  describe("sizes", () => {
    test("a request over 1.5 MiB: InvalidArgument, request is too large; one under it is stored", async () => {
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("big"), value: Buffer.alloc(REQUEST_BYTES_MAX + 1, 0x61) }), INVALID_ARGUMENT, TOO_LARGE);
      await expectRejectedWrite(() => c.call("KV", "Put", { key: b("big"), value: Buffer.alloc(MESSAGE_BYTES_MAX - 1024, 0x61) }), INVALID_ARGUMENT, TOO_LARGE);
      const bigTxn = { success: Array.from({ length: 4 }, (_, i) => put(`big${i}`, "x".repeat(REQUEST_BYTES_MAX / 4))) };
      await expectRejectedWrite(() => c.call("KV", "Txn", bigTxn), INVALID_ARGUMENT, TOO_LARGE);
      await expectRejectedWrite(() => c.call("KV", "DeleteRange", { key: b("big"), range_end: Buffer.alloc(REQUEST_BYTES_MAX + 1, 0x7a) }), INVALID_ARGUMENT, TOO_LARGE);

      const fits = Buffer.alloc(REQUEST_BYTES_MAX - 4096, 0x62);
      await c.call("KV", "Put", { key: b("big"), value: fits });
      const r = await c.call("KV", "Range", { key: b("big") });
      expect(Buffer.compare(r.kvs[0].value, fits)).toBe(0);
    });

    test("a gRPC message over 2 MiB: ResourceExhausted, grpc: received message larger than max (N vs. 2097152)", async () => {
      for (const valueBytes of [MESSAGE_BYTES_MAX + 10, 3 * 1024 * 1024]) {
        const before = await revision();
        const e = await grpcError(c.call("KV", "Put", { key: b("big"), value: Buffer.alloc(valueBytes, 0x63) }));
        expect(e.code).toBe(RESOURCE_EXHAUSTED);
        expect(e.details.startsWith("grpc: received message larger than max")).toBe(true);
        expect(e.details).toBe(`grpc: received message larger than max (${putMessageBytes(3, valueBytes)} vs. ${MESSAGE_BYTES_MAX})`);
        expect(await revision()).toBe(before);
      }
      // The stored big value is untouched.
      expect((await c.call("KV", "Range", { key: b("big") })).kvs[0].value[0]).toBe(0x62);
    });
  });

  describe("txn limits", () => {
    test("more than 128 ops in compare, success or failure: InvalidArgument, too many operations", async () => {
      const compare = (n: number) => Array.from({ length: n }, () => ({ key: b("seed/0"), target: "Version", result: "Greater", version: "0" }));
      await expectRejectedWrite(() => c.call("KV", "Txn", { success: puts(TXN_OPS_MAX + 1, "ops/") }), INVALID_ARGUMENT, TOO_MANY_OPS);
      await expectRejectedWrite(() => c.call("KV", "Txn", { failure: puts(TXN_OPS_MAX + 1, "ops/") }), INVALID_ARGUMENT, TOO_MANY_OPS);
      await expectError(c.call("KV", "Txn", { compare: compare(TXN_OPS_MAX + 1) }), INVALID_ARGUMENT, TOO_MANY_OPS);
      await expectError(c.call("KV", "Txn", { success: Array.from({ length: TXN_OPS_MAX + 1 }, () => range("seed/0")) }), INVALID_ARGUMENT, TOO_MANY_OPS);

      // 128 is allowed, in each list at once.
      const ok = await c.call("KV", "Txn", { compare: compare(TXN_OPS_MAX), success: puts(TXN_OPS_MAX, "ops/"), failure: puts(TXN_OPS_MAX, "nope/") });
      expect(ok.succeeded).toBe(true);
      expect(ok.responses).toHaveLength(TXN_OPS_MAX);
      expect((await c.call("KV", "Range", { key: b("ops/"), range_end: b("ops0"), count_only: true })).count).toBe(String(TXN_OPS_MAX));
    });

    test("a nested txn has only what its parent's widest list left of the 128", async () => {
      // Parent uses 1 op: the nested txn may have 127, not 128.
      await expectRejectedWrite(() => c.call("KV", "Txn", { success: [{ request_txn: { success: puts(TXN_OPS_MAX, "nest/") } }] }), INVALID_ARGUMENT, TOO_MANY_OPS);
      await expectRejectedWrite(() => c.call("KV", "Txn", { success: [range("seed/0"), { request_txn: { success: puts(TXN_OPS_MAX - 1, "nest/") } }] }), INVALID_ARGUMENT, TOO_MANY_OPS);
      const ok = await c.call("KV", "Txn", { success: [range("seed/0"), { request_txn: { success: puts(TXN_OPS_MAX - 2, "nest/") } }] });
      expect(ok.responses[1].response_txn.responses).toHaveLength(TXN_OPS_MAX - 2);
    });

    test("a RequestOp with no request: InvalidArgument, key not found", async () => {
      await expectRejectedWrite(() => c.call("KV", "Txn", { success: [put("fine"), {}] }), INVALID_ARGUMENT, KEY_NOT_FOUND);
      expect((await c.call("KV", "Range", { key: b("fine") })).kvs).toEqual([]);
    });
  });

  describe("duplicate keys in a txn", () => {
    const cases: [string, Msg][] = [
      ["one key put twice", { success: [put("dup"), put("dup", "w")] }],
      ["twice in the failure branch", { failure: [put("dup"), put("dup", "w")] }],
      ["put and deleted", { success: [put("dup"), del("dup")] }],
      ["put inside a deleted range", { success: [del("dua", "duz"), put("dup")] }],
      ["put in a nested txn and in its parent", { success: [put("dup"), { request_txn: { success: [put("dup")] } }] }],
      ["put by a nested txn inside a range its parent deletes", { success: [del("d", "e"), { request_txn: { failure: [put("dup")] } }] }],
    ];
    test.each(cases)("%s: InvalidArgument, duplicate key given in txn request", async (_what, txn) => {
      await expectRejectedWrite(() => c.call("KV", "Txn", txn), INVALID_ARGUMENT, DUPLICATE_KEY);
      expect((await c.call("KV", "Range", { key: b("dup") })).kvs).toEqual([]);
    });

    test("not duplicates: the same key in then and else, read and written, deleted twice", async () => {
      const r = await c.call("KV", "Txn", { success: [put("dup", "then")], failure: [put("dup", "else")] });
      expect(r.succeeded).toBe(true);
      const r2 = await c.call("KV", "Txn", { success: [range("dup"), put("dup", "again"), range("dup")] });
      expect(r2.responses[0].response_range.kvs[0].value.toString()).toBe("then");
      expect(r2.responses[2].response_range.kvs[0].value.toString()).toBe("again");
      const r3 = await c.call("KV", "Txn", { success: [del("dup"), del("dup")] });
      expect(r3.responses.map((x: Msg) => x.response_delete_range.deleted)).toEqual(["1", "0"]);
      expect(Number(r3.header.revision)).toBe(Number(r2.header.revision) + 1);
    });
  });

  describe("after every bad request", () => {
    test("the server still answers Status, MemberList and Range", async () => {
      const status = await c.call("Maintenance", "Status", {});
      expect(status.version).toMatch(/^3\.4\./);
      const members = await c.call("Cluster", "MemberList", {});
      expect(members.members).toHaveLength(1);
      expect(Number(status.header.revision)).toBe(await revision());
    });

    test("nothing written before is lost or changed", async () => {
      const r = await c.call("KV", "Range", { key: b("seed/"), range_end: b("seed0") });
      expect(r.kvs).toHaveLength(SEED_KEYS);
      for (const kv of r.kvs) expect(kv).toEqual(seeded.get(kv.key.toString()));
      expect((await c.call("KV", "Range", { key: b("history") })).kvs[0].value.toString()).toBe("three");
    });
  });
});

describe.each(TARGETS)("--max-txn-ops 4 --max-request-bytes 2048 on %s", (name) => {
  const OPS_MAX = 4;
  const BYTES_MAX = 2048;
  const MESSAGE_MAX = BYTES_MAX + 512 * 1024;
  let c: RawClient;
  serveSuite(name, (t) => rawClient(t.endpoint), (_, raw) => { c = raw; }, () => ["--max-txn-ops", String(OPS_MAX), "--max-request-bytes", String(BYTES_MAX)]);

  test("a Txn may hold 4 ops in each list, not 5", async () => {
    expect((await c.call("KV", "Txn", { success: puts(OPS_MAX, "four/"), failure: puts(OPS_MAX, "nope/") })).succeeded).toBe(true);
    expect(await grpcError(c.call("KV", "Txn", { success: puts(OPS_MAX + 1, "five/") }))).toEqual({ code: INVALID_ARGUMENT, details: TOO_MANY_OPS });
    expect((await c.call("KV", "Range", { key: b("four/"), range_end: b("four0"), count_only: true })).count).toBe(String(OPS_MAX));
    expect((await c.call("KV", "Range", { key: b("five/"), range_end: b("five0"), count_only: true })).count).toBe("0");
  });

  test("a write over 2,048 bytes is too large, one under is stored; a message over 2,048 B + 512 KiB is gRPC's error", async () => {
    expect(await grpcError(c.call("KV", "Put", { key: b("big"), value: Buffer.alloc(BYTES_MAX + 1, 0x61) }))).toEqual({ code: INVALID_ARGUMENT, details: TOO_LARGE });
    await c.call("KV", "Put", { key: b("big"), value: Buffer.alloc(BYTES_MAX - 64, 0x62) });
    expect((await c.call("KV", "Range", { key: b("big") })).kvs[0].value.length).toBe(BYTES_MAX - 64);
    const valueBytes = MESSAGE_MAX + 10;
    expect(await grpcError(c.call("KV", "Put", { key: b("big"), value: Buffer.alloc(valueBytes, 0x63) }))).toEqual({
      code: RESOURCE_EXHAUSTED,
      details: `grpc: received message larger than max (${putMessageBytes(3, valueBytes)} vs. ${MESSAGE_MAX})`,
    });
    expect((await c.call("KV", "Range", { key: b("big") })).kvs[0].value[0]).toBe(0x62);
  });
});
