/**
 * Leases against mergekv and, as the reference, a real etcd: the raw Lease
 * RPCs with their exact answers and error codes (a grpc-js client), and the
 * etcdctl lease commands with their exact output. The etcd3 client's lease
 * recipes (locks, elections, STM) are in lease-client.test.ts.
 */
import * as grpc from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { serveSuite, Target, TARGETS } from "../helpers/targets";
import { b, grpcError, Msg, rawClient, RawClient, services } from "../helpers/grpc";

const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;
const OUT_OF_RANGE = 11;
const LEASE_NOT_FOUND = "etcdserver: requested lease not found";
/** A hung etcdctl or stream fails the test rather than the whole run. */
const WAIT_MS = 20_000;

/** A raw LeaseKeepAlive stream: each `renew` writes one request and waits for its answer. */
interface KeepAliveStream {
  renew(id: string): Promise<Msg>;
  close(): void;
}

function keepAliveStream(endpoint: string): KeepAliveStream {
  const client = new (services().Lease)(endpoint, grpc.credentials.createInsecure()) as grpc.Client & Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>;
  const call = client.LeaseKeepAlive();
  const waiting: ((m: Msg | Error) => void)[] = [];
  call.on("data", (m: Msg) => waiting.shift()?.(m));
  call.on("error", (e: Error) => { for (const w of waiting.splice(0)) w(e); });
  call.on("end", () => { for (const w of waiting.splice(0)) w(new Error("keep-alive stream ended")); });
  return {
    renew: (id) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no keep-alive answer")), WAIT_MS);
      waiting.push((m) => { clearTimeout(timer); if (m instanceof Error) reject(m); else resolve(m); });
      call.write({ ID: id });
    }),
    close: () => { call.cancel(); client.close(); },
  };
}

function etcdctl(endpoint: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile("etcdctl", ["--endpoints", endpoint, ...args], { env: { ...process.env, ETCDCTL_API: "3" }, timeout: WAIT_MS }, (e, stdout, stderr) => {
      if (e && typeof e.code !== "number") return reject(e);
      resolve({ code: e ? (e.code as number) : 0, stdout, stderr });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(TARGETS)("leases on %s", (name) => {
  let target: Target;
  let c: RawClient;
  const lease = (method: string, req: Msg) => c.call("Lease", method, req);
  const revision = async (): Promise<number> => Number((await c.call("KV", "Range", { key: b("\0"), range_end: b("\0"), count_only: true })).header.revision);
  const get = async (key: string): Promise<Msg | undefined> => (await c.call("KV", "Range", { key: b(key) })).kvs[0];
  const grant = async (ttl: number, id = "0"): Promise<string> => (await lease("LeaseGrant", { ID: id, TTL: String(ttl) })).ID;

  serveSuite(name, (t) => rawClient(t.endpoint), (t, raw) => { target = t; c = raw; });

  describe("raw RPCs", () => {
    test("grant: the server picks a positive id; a given id is kept; TTL 1 is granted as 2", async () => {
      const r = await lease("LeaseGrant", { TTL: "60" });
      expect(BigInt(r.ID)).toBeGreaterThan(0n);
      expect([r.TTL, r.error, Number(r.header.revision)]).toEqual(["60", "", await revision()]);
      expect((await lease("LeaseGrant", { ID: "4242", TTL: "30" })).ID).toBe("4242");
      expect((await lease("LeaseGrant", { TTL: "1" })).TTL).toBe("2");
      const listed = (await lease("LeaseLeases", {})).leases.map((l: Msg) => l.ID);
      expect(listed).toEqual(expect.arrayContaining([r.ID, "4242"]));
    });

    test("grant errors: an existing id is code 9 lease already exists; a TTL over 9e9 is code 11 too large lease TTL", async () => {
      await grant(30, "777");
      expect(await grpcError(lease("LeaseGrant", { ID: "777", TTL: "30" }))).toEqual({ code: FAILED_PRECONDITION, details: "etcdserver: lease already exists" });
      expect(await grpcError(lease("LeaseGrant", { TTL: "9000000001" }))).toEqual({ code: OUT_OF_RANGE, details: "etcdserver: too large lease TTL" });
    });

    test("a Put or Revoke naming an unknown lease is code 5 requested lease not found, writing nothing", async () => {
      const before = await revision();
      expect(await grpcError(c.call("KV", "Put", { key: b("nl"), value: b("v"), lease: "987654" }))).toEqual({ code: NOT_FOUND, details: LEASE_NOT_FOUND });
      expect(await grpcError(lease("LeaseRevoke", { ID: "987654" }))).toEqual({ code: NOT_FOUND, details: LEASE_NOT_FOUND });
      expect(await revision()).toBe(before);
      expect(await get("nl")).toBeUndefined();
    });

    test("an id beyond 2^53 names no lease: Put and Revoke are code 5, TimeToLive -1, KeepAlive 0 on an open stream", async () => {
      const big = "9007199254740993";
      expect(await grpcError(c.call("KV", "Put", { key: b("big"), value: b("v"), lease: big }))).toEqual({ code: NOT_FOUND, details: LEASE_NOT_FOUND });
      expect(await grpcError(lease("LeaseRevoke", { ID: big }))).toEqual({ code: NOT_FOUND, details: LEASE_NOT_FOUND });
      const ttl = await lease("LeaseTimeToLive", { ID: big });
      expect([ttl.ID, ttl.TTL]).toEqual([big, "-1"]);
      const id = await grant(30);
      const stream = keepAliveStream(target.endpoint);
      try {
        const r = await stream.renew(big);
        expect([r.ID, r.TTL]).toEqual([big, "0"]);
        expect((await stream.renew(id)).TTL).toBe("30");
      } finally {
        stream.close();
      }
    });

    test("time-to-live: granted and remaining TTL, attached keys on request; an unknown id answers TTL -1", async () => {
      const id = await grant(100);
      await c.call("KV", "Put", { key: b("ttl/b"), value: b("2"), lease: id });
      await c.call("KV", "Put", { key: b("ttl/a"), value: b("1"), lease: id });
      const other = await grant(100);
      await c.call("KV", "Put", { key: b("ttl/c"), value: b("3"), lease: id });
      await c.call("KV", "Put", { key: b("ttl/c"), value: b("3"), lease: other }); // moves to the other lease
      const r = await lease("LeaseTimeToLive", { ID: id, keys: true });
      expect([r.ID, r.grantedTTL]).toEqual([id, "100"]);
      expect(Number(r.TTL)).toBeGreaterThanOrEqual(98);
      expect(Number(r.TTL)).toBeLessThanOrEqual(100);
      expect(r.keys.map((k: Buffer) => k.toString()).sort()).toEqual(["ttl/a", "ttl/b"]);
      expect((await lease("LeaseTimeToLive", { ID: id })).keys).toEqual([]);
      expect((await get("ttl/a"))?.lease).toBe(id);
      const cmp = (lease: string) => c.call("KV", "Txn", { compare: [{ key: b("ttl/a"), target: "Lease", result: "Equal", lease }] });
      expect([(await cmp(id)).succeeded, (await cmp(other)).succeeded]).toEqual([true, false]);
      const unknown = await lease("LeaseTimeToLive", { ID: "31337", keys: true });
      expect([unknown.ID, unknown.TTL, unknown.grantedTTL, unknown.keys]).toEqual(["31337", "-1", "0", []]);
      expect(Number(unknown.header.revision)).toBe(await revision());
    });

    test("revoke deletes the attached keys at one new revision and leaves others; the lease is gone", async () => {
      const id = await grant(100);
      for (const k of ["rv/1", "rv/2", "rv/3"]) await c.call("KV", "Put", { key: b(k), value: b(k), lease: id });
      await c.call("KV", "Put", { key: b("rv/free"), value: b("x") });
      const before = await revision();
      const r = await lease("LeaseRevoke", { ID: id });
      expect(Number(r.header.revision)).toBe(before + 1);
      const left = await c.call("KV", "Range", { key: b("rv/"), range_end: b("rv0") });
      expect(left.kvs.map((kv: Msg) => kv.key.toString())).toEqual(["rv/free"]);
      expect((await lease("LeaseTimeToLive", { ID: id })).TTL).toBe("-1");
      expect((await lease("LeaseLeases", {})).leases.map((l: Msg) => l.ID)).not.toContain(id);
      expect(await grpcError(c.call("KV", "Put", { key: b("rv/late"), value: b("v"), lease: id }))).toEqual({ code: NOT_FOUND, details: LEASE_NOT_FOUND });
    });

    test("revoking a lease with no keys does not raise the revision", async () => {
      const id = await grant(100);
      const before = await revision();
      expect(Number((await lease("LeaseRevoke", { ID: id })).header.revision)).toBe(before);
    });

    test("keep-alive renews to the full TTL; an unknown id answers TTL 0 and the stream stays open", async () => {
      const id = await grant(10);
      const stream = keepAliveStream(target.endpoint);
      try {
        await sleep(1_100);
        expect(Number((await lease("LeaseTimeToLive", { ID: id })).TTL)).toBeLessThanOrEqual(8);
        const renewed = await stream.renew(id);
        expect([renewed.ID, renewed.TTL]).toEqual([id, "10"]);
        expect(Number(renewed.header.revision)).toBe(await revision());
        expect(Number((await lease("LeaseTimeToLive", { ID: id })).TTL)).toBeGreaterThanOrEqual(9);
        const unknown = await stream.renew("55555");
        expect([unknown.ID, unknown.TTL]).toEqual(["55555", "0"]);
        expect((await stream.renew(id)).TTL).toBe("10"); // same stream, still answering
      } finally {
        stream.close();
      }
    });

    test("expiry deletes the attached keys by itself at one revision; a keep-alive stream then answers TTL 0", async () => {
      const id = await grant(2);
      const granted = Date.now();
      await c.call("KV", "Put", { key: b("exp/a"), value: b("1"), lease: id });
      await c.call("KV", "Put", { key: b("exp/b"), value: b("2"), lease: id });
      await c.call("KV", "Put", { key: b("exp/keep"), value: b("3") });
      const before = await revision();
      await sleep(granted + 1_000 - Date.now());
      expect(await get("exp/a")).toBeDefined();
      const deadline = Date.now() + 10_000;
      while (await get("exp/a")) {
        if (Date.now() > deadline) throw new Error("lease did not expire");
        await sleep(100);
      }
      expect(await get("exp/b")).toBeUndefined();
      expect((await get("exp/keep"))?.value.toString()).toBe("3");
      expect(await revision()).toBe(before + 1);
      expect((await lease("LeaseTimeToLive", { ID: id })).TTL).toBe("-1");
      const stream = keepAliveStream(target.endpoint);
      try {
        expect((await stream.renew(id)).TTL).toBe("0");
      } finally {
        stream.close();
      }
    });
  });

  describe("etcdctl", () => {
    const ok = async (...args: string[]): Promise<string> => {
      const r = await etcdctl(target.endpoint, args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
      return r.stdout;
    };
    /** etcdctl exits 1 on most errors, 2 when keep-alive --once fails. */
    const fails = async (code: number, message: string, ...args: string[]): Promise<void> => {
      const r = await etcdctl(target.endpoint, args);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code, stdout: "" });
      expect(r.stderr).toContain(`Error: ${message}\n`);
    };
    /** "lease 694d7a3b1c2e4f10 granted with TTL(60s)" -> the hex id. */
    const grantCtl = async (ttl: number): Promise<string> => {
      const out = await ok("lease", "grant", String(ttl));
      const m = /^lease ([0-9a-f]+) granted with TTL\((\d+)s\)\n$/.exec(out);
      expect(m).not.toBeNull();
      expect(m![2]).toBe(String(Math.max(ttl, 2)));
      return m![1];
    };

    test("grant, put --lease, timetolive --keys, list, keep-alive --once, revoke", async () => {
      const id = await grantCtl(60);
      expect(await ok("put", "ctl/a", "1", `--lease=${id}`)).toBe("OK\n");
      expect(await ok("put", "ctl/b", "2", `--lease=${id}`)).toBe("OK\n");
      expect(await ok("lease", "timetolive", id)).toMatch(new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\)\\n$`));
      expect(await ok("lease", "timetolive", id, "--keys")).toMatch(new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[(ctl/a ctl/b|ctl/b ctl/a)\\]\\)\\n$`)); // etcd: map order
      const list = (await ok("lease", "list")).split("\n");
      expect(list[0]).toMatch(/^found \d+ leases$/);
      expect(list).toContain(id);
      expect(await ok("lease", "keep-alive", "--once", id)).toBe(`lease ${id} keepalived with TTL(60)\n`);
      expect(await ok("get", "ctl/", "--prefix", "--keys-only")).toBe("ctl/a\n\nctl/b\n\n");
      expect(await ok("lease", "revoke", id)).toBe(`lease ${id} revoked\n`);
      expect(await ok("get", "ctl/", "--prefix")).toBe("");
      expect(await ok("lease", "timetolive", id)).toBe(`lease ${id} already expired\n`);
    });

    test("TTL 1 and TTL 0 are granted as 2", async () => {
      await grantCtl(1);
      await grantCtl(0);
    });

    test("an unknown lease: put --lease, revoke and keep-alive --once fail; timetolive says already expired", async () => {
      await fails(1, LEASE_NOT_FOUND, "put", "ctl/x", "v", "--lease=abc123");
      await fails(1, `failed to revoke lease (${LEASE_NOT_FOUND})`, "lease", "revoke", "abc123");
      await fails(2, LEASE_NOT_FOUND, "lease", "keep-alive", "--once", "abc123");
      expect(await ok("lease", "timetolive", "abc123", "--keys")).toBe("lease 0000000000abc123 already expired\n");
      await fails(1, "failed to grant lease (etcdserver: too large lease TTL)", "lease", "grant", "9000000001");
    });
  });
});
