/**
 * The npm `etcd3` client against mergekv and, as the reference, a real etcd:
 * the calls applications make (get/put/delete builders, if().then().else(),
 * compaction) and the revision, ordering and byte-exactness guarantees they
 * rely on. Revisions are asserted relative to each other, never absolutely.
 */
import { Etcd3, IKeyValue, GRPCOutOfRangeError } from "etcd3";
import { serveSuite, Target, TARGETS } from "../helpers/targets";

/** Clients and puts for the concurrency test: enough to interleave on every frontend. */
const CONCURRENT_CLIENTS = 16;
const PUTS_PER_CLIENT = 40;

const str = (kv: IKeyValue) => ({ key: kv.key.toString(), value: kv.value.toString() });

describe.each(TARGETS)("etcd3 client on %s", (name) => {
  let target: Target;
  let client: Etcd3;

  const revision = async (): Promise<number> => Number((await client.kv.range({ key: Buffer.from("\0"), count_only: true })).header.revision);

  serveSuite(name, (t) => new Etcd3({ hosts: "http://" + t.endpoint }), (t, c) => { target = t; client = c; });

  test("put and get", async () => {
    expect(await client.get("pg/missing").string()).toBeNull();
    expect(await client.get("pg/missing").exists()).toBe(false);
    await client.put("pg/a").value("alpha");
    expect(await client.get("pg/a").string()).toBe("alpha");
    await client.put("pg/a").value("beta");
    expect(await client.get("pg/a").string()).toBe("beta");
    await client.put("pg/n").value(42);
    expect(await client.get("pg/n").number()).toBe(42);
    await client.put("pg/j").value(JSON.stringify({ x: [1, 2] }));
    expect(await client.get("pg/j").json()).toEqual({ x: [1, 2] });
    await client.put("pg/empty").value("");
    expect(await client.get("pg/empty").string()).toBe("");
    expect(await client.get("pg/empty").exists()).toBe(true);
  });

  test("getAll().prefix() with sort and limit", async () => {
    const values: Record<string, string> = { "sl/a": "3", "sl/b": "5", "sl/c": "1", "sl/d": "4", "sl/e": "2" };
    for (const [k, v] of Object.entries(values)) await client.put(k).value(v);
    await client.put("sl/b").value("5"); // version 2
    await client.put("sm/outside").value("0");

    expect(await client.getAll().prefix("sl/").keys()).toEqual(["sl/a", "sl/b", "sl/c", "sl/d", "sl/e"]);
    expect(await client.getAll().prefix("sl/").strings()).toEqual(values);

    const byValue = await client.getAll().prefix("sl/").sort("Value", "Descend").limit(3).exec();
    expect(byValue.kvs.map(str)).toEqual([{ key: "sl/b", value: "5" }, { key: "sl/d", value: "4" }, { key: "sl/a", value: "3" }]);
    expect(byValue.more).toBe(true);
    expect(byValue.count).toBe("5");

    const byKeyDesc = await client.getAll().prefix("sl/").sort("Key", "Descend").limit(2).keys();
    expect(byKeyDesc).toEqual(["sl/e", "sl/d"]);

    const byCreate = await client.getAll().prefix("sl/").sort("Create", "Ascend").keys();
    expect(byCreate).toEqual(["sl/a", "sl/b", "sl/c", "sl/d", "sl/e"]);
    const byMod = await client.getAll().prefix("sl/").sort("Mod", "Descend").keys();
    expect(byMod).toEqual(["sl/b", "sl/e", "sl/d", "sl/c", "sl/a"]);
    // Ties keep key order in both directions.
    const byVersion = await client.getAll().prefix("sl/").sort("Version", "Descend").keys();
    expect(byVersion).toEqual(["sl/b", "sl/a", "sl/c", "sl/d", "sl/e"]);

    const all = await client.getAll().prefix("sl/").limit(5).exec();
    expect(all.more).toBe(false);
    expect(all.kvs).toHaveLength(5);
  });

  test("keys only and count", async () => {
    for (let i = 0; i < 7; i++) await client.put(`ko/${i}`).value(`value-${i}`);
    const keysOnly = await client.kv.range({ key: Buffer.from("ko/"), range_end: Buffer.from("ko0"), keys_only: true });
    expect(keysOnly.kvs.map((kv) => kv.key.toString())).toEqual(["ko/0", "ko/1", "ko/2", "ko/3", "ko/4", "ko/5", "ko/6"]);
    for (const kv of keysOnly.kvs) {
      expect(kv.value.length).toBe(0);
      expect(Number(kv.mod_revision)).toBeGreaterThan(0);
    }
    expect(await client.getAll().prefix("ko/").count()).toBe(7);
    expect(await client.getAll().prefix("ko/nothing").count()).toBe(0);
    const countOnly = await client.kv.range({ key: Buffer.from("ko/"), range_end: Buffer.from("ko0"), count_only: true, limit: 2 });
    expect(countOnly.kvs).toEqual([]);
    expect(countOnly.count).toBe("7");
    expect(countOnly.more).toBe(false);
    // count ignores the limit and the revision filters
    const filtered = await client.getAll().prefix("ko/").minModRevision(Number.MAX_SAFE_INTEGER).limit(1).exec();
    expect(filtered.kvs).toEqual([]);
    expect(filtered.count).toBe("7");
  });

  test("delete with prev kv, by key and by prefix", async () => {
    await client.put("del/a").value("1");
    await client.put("del/b").value("2");
    await client.put("del/c").value("3");
    const prev = await client.delete().key("del/a").getPrevious();
    expect(prev.map(str)).toEqual([{ key: "del/a", value: "1" }]);
    expect(await client.get("del/a").string()).toBeNull();

    const none = await client.delete().key("del/a").exec();
    expect(none.deleted).toBe("0");

    const rest = await client.delete().prefix("del/").getPrevious();
    expect(rest.map(str)).toEqual([{ key: "del/b", value: "2" }, { key: "del/c", value: "3" }]);
    expect(await client.getAll().prefix("del/").count()).toBe(0);
  });

  test("txn: if().then().else() on Create, Value, Version and Mod", async () => {
    const create = () => client.if("tx/lock", "Create", "==", 0).then(client.put("tx/lock").value("mine")).else(client.get("tx/lock")).commit();
    const first = await create();
    expect(first.succeeded).toBe(true);
    const second = await create();
    expect(second.succeeded).toBe(false);
    expect(second.responses[0].response_range!.kvs.map(str)).toEqual([{ key: "tx/lock", value: "mine" }]);

    const swap = await client.if("tx/lock", "Value", "==", "mine").then(client.put("tx/lock").value("yours")).commit();
    expect(swap.succeeded).toBe(true);
    const noSwap = await client.if("tx/lock", "Value", "==", "mine").then(client.put("tx/lock").value("again")).commit();
    expect(noSwap.succeeded).toBe(false);
    expect(await client.get("tx/lock").string()).toBe("yours");

    const kv = (await client.get("tx/lock").exec()).kvs[0];
    expect(kv.version).toBe("2");
    const byVersion = await client.if("tx/lock", "Version", "==", 2).and("tx/lock", "Mod", "==", kv.mod_revision).then(client.delete().key("tx/lock")).commit();
    expect(byVersion.succeeded).toBe(true);
    expect(byVersion.responses[0].response_delete_range!.deleted).toBe("1");
    const older = await client.if("tx/lock", "Mod", ">", 0).then(client.put("tx/x").value("no")).else(client.put("tx/x").value("absent")).commit();
    expect(older.succeeded).toBe(false);
    expect(await client.get("tx/x").string()).toBe("absent");

    // On a missing key a Value compare is false either way.
    expect((await client.if("tx/missing", "Value", "==", "").commit()).succeeded).toBe(false);
    expect((await client.if("tx/missing", "Value", "!=", "x").commit()).succeeded).toBe(false);
    expect((await client.if("tx/missing", "Version", "<", 1).commit()).succeeded).toBe(true);
  });

  test("a txn with several writes gives them all one revision", async () => {
    await client.put("multi/gone").value("x");
    const before = await revision();
    const r = await client
      .if("multi/a", "Create", "==", 0)
      .then(client.put("multi/a").value("1"), client.put("multi/b").value("2"), client.put("multi/c").value("3"), client.delete().key("multi/gone"), client.get("multi/a"))
      .commit();
    expect(r.succeeded).toBe(true);
    const rev = Number(r.header.revision);
    expect(rev).toBe(before + 1);
    // A read after a write in the same txn sees the write.
    expect(r.responses[4].response_range!.kvs.map(str)).toEqual([{ key: "multi/a", value: "1" }]);
    const kvs = (await client.getAll().prefix("multi/").exec()).kvs;
    expect(kvs.map((kv) => kv.key.toString())).toEqual(["multi/a", "multi/b", "multi/c"]);
    for (const kv of kvs) {
      expect(Number(kv.mod_revision)).toBe(rev);
      expect(Number(kv.create_revision)).toBe(rev);
      expect(kv.version).toBe("1");
    }
    expect(await revision()).toBe(rev);
  });

  test("compact, then reading an old revision fails with etcd's message", async () => {
    const r1 = Number((await client.put("cmp/k").value("v1")).header.revision);
    const r2 = Number((await client.put("cmp/k").value("v2")).header.revision);
    const r3 = Number((await client.put("cmp/k").value("v3")).header.revision);
    expect(await client.get("cmp/k").revision(r1).string()).toBe("v1");

    const compacted = await client.kv.compact({ revision: String(r2), physical: true });
    expect(Number(compacted.header.revision)).toBe(r3);

    const err = await client.get("cmp/k").revision(r1).string().then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(GRPCOutOfRangeError);
    expect(err!.message).toContain("etcdserver: mvcc: required revision has been compacted");
    expect(await client.get("cmp/k").revision(r2).string()).toBe("v2");
    expect(await client.get("cmp/k").revision(r3).string()).toBe("v3");
    expect(await client.get("cmp/k").string()).toBe("v3");

    const future = await client.get("cmp/k").revision(r3 + 100).string().then(() => null, (e: Error) => e);
    expect(future).toBeInstanceOf(GRPCOutOfRangeError);
    expect(future!.message).toContain("etcdserver: mvcc: required revision is a future revision");
  });

  test("revisions: +1 per write request; no-op deletes, read-only txns and compact leave it", async () => {
    let rev = await revision();
    const step = async (what: string, write: () => Promise<{ header: { revision: string } }>, delta: number) => {
      const r = await write();
      expect({ what, revision: Number(r.header.revision) }).toEqual({ what, revision: rev + delta });
      expect({ what, revision: await revision() }).toEqual({ what, revision: rev + delta });
      rev += delta;
    };
    await step("put", () => client.put("rev/a").value("1").exec(), 1);
    await step("put same key", () => client.put("rev/a").value("2").exec(), 1);
    await step("put same value", () => client.put("rev/a").value("2").exec(), 1);
    await step("delete nothing", () => client.delete().key("rev/none").exec(), 0);
    await step("delete empty prefix", () => client.delete().prefix("rev/none/").exec(), 0);
    await step("read-only txn", () => client.if("rev/a", "Version", ">", 0).then(client.get("rev/a")).else(client.get("rev/b")).commit(), 0);
    await step("txn whose branch is empty", () => client.if("rev/a", "Version", "==", 0).then(client.put("rev/b").value("x")).commit(), 0);
    await step("txn deleting nothing", () => client.if("rev/a", "Version", ">", 0).then(client.delete().key("rev/none")).commit(), 0);
    await step("compact", () => client.kv.compact({ revision: String(rev) }), 0);
    await step("txn with a write", () => client.if("rev/a", "Version", ">", 0).then(client.put("rev/b").value("x")).commit(), 1);
    await step("delete one", () => client.delete().key("rev/b").exec(), 1);
    await step("delete a prefix of one", () => client.delete().prefix("rev/").exec(), 1);
    await step("get", () => client.get("rev/a").exec(), 0);
  });

  test("create revision, mod revision and version", async () => {
    const r1 = Number((await client.put("ver/k").value("1")).header.revision);
    let kv = (await client.get("ver/k").exec()).kvs[0];
    expect([Number(kv.create_revision), Number(kv.mod_revision), kv.version]).toEqual([r1, r1, "1"]);

    await client.put("ver/other").value("x");
    const r2 = Number((await client.put("ver/k").value("2")).header.revision);
    kv = (await client.get("ver/k").exec()).kvs[0];
    expect([Number(kv.create_revision), Number(kv.mod_revision), kv.version]).toEqual([r1, r2, "2"]);

    const prev = await client.put("ver/k").value("3").getPrevious();
    expect([prev.value.toString(), Number(prev.mod_revision), prev.version]).toEqual(["2", r2, "2"]);

    const rd = Number((await client.delete().key("ver/k").exec()).header.revision);
    expect(await client.get("ver/k").revision(rd - 1).string()).toBe("3");
    expect(await client.get("ver/k").revision(rd).exists()).toBe(false);

    const r4 = Number((await client.put("ver/k").value("again")).header.revision);
    expect(r4).toBe(rd + 1);
    kv = (await client.get("ver/k").exec()).kvs[0];
    expect([Number(kv.create_revision), Number(kv.mod_revision), kv.version]).toEqual([r4, r4, "1"]);
    // The old generation is still readable at its revisions.
    expect(await client.get("ver/k").revision(r1).string()).toBe("1");
  });

  test("binary keys and values: every byte round-trips, ranges come back in byte order", async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const keys: Buffer[] = [];
    for (let i = 0; i < 256; i++) keys.push(Buffer.from([0x01, i]));
    keys.push(Buffer.from([0x01, 0x7f, 0xff]), Buffer.from([0x01, 0xc3, 0x28]), Buffer.from([0x01, 0xff, 0xff]), Buffer.from([0x01, 0x00, 0x00]));
    // Concurrently, in a shuffled order, so that the order read back is the store's, not the writes'.
    const shuffled = [...keys].sort((a, b) => (a[1] * 37 + a.length) % 256 - (b[1] * 37 + b.length) % 256);
    await Promise.all(shuffled.map((k) => client.put(k).value(Buffer.concat([k, all]))));

    const got = await client.getAll().prefix(Buffer.from([0x01])).exec();
    const expected = [...keys].sort(Buffer.compare);
    expect(got.kvs.map((kv) => kv.key.toString("hex"))).toEqual(expected.map((k) => k.toString("hex")));
    for (const kv of got.kvs) expect(Buffer.compare(kv.value, Buffer.concat([kv.key, all]))).toBe(0);

    // A range across the high bytes: [0x01 0x7f, 0x01 0x81) holds 0x7f, 0x7f 0xff, 0x80 only.
    const mid = await client.kv.range({ key: Buffer.from([0x01, 0x7f]), range_end: Buffer.from([0x01, 0x81]) });
    expect(mid.kvs.map((kv) => kv.key.toString("hex"))).toEqual(["017f", "017fff", "0180"]);
    // A prefix of 0xff bytes (its range end is "every key from").
    const high = await client.getAll().prefix(Buffer.from([0x01, 0xff])).keyBuffers();
    expect(high.map((k) => k.toString("hex"))).toEqual(["01ff", "01ffff"]);
    // A single NUL byte key and a value of one NUL byte.
    await client.put(Buffer.from([0x00])).value(Buffer.from([0x00]));
    expect((await client.get(Buffer.from([0x00])).buffer())!.toString("hex")).toBe("00");
    expect((await client.get(Buffer.from([0x01, 0xc3, 0x28])).buffer())!.subarray(3).equals(all)).toBe(true);

    // The whole keyspace comes back in byte order too.
    const everything = (await client.getAll().all().keyBuffers());
    expect(everything.length).toBeGreaterThan(keys.length);
    expect(everything.map((k) => k.toString("hex"))).toEqual([...everything].sort(Buffer.compare).map((k) => k.toString("hex")));
    expect(everything[0].toString("hex")).toBe("00");
  });

  test("many concurrent puts from many clients are all visible, each at its own revision", async () => {
    const clients = Array.from({ length: CONCURRENT_CLIENTS }, () => new Etcd3({ hosts: "http://" + target.endpoint }));
    try {
      const before = await revision();
      const results = await Promise.all(clients.map((cl, c) =>
        Promise.all(Array.from({ length: PUTS_PER_CLIENT }, (_, i) => cl.put(`conc/${c}/${i}`).value(`client ${c} put ${i}`).exec()))));
      const revisions = results.flat().map((r) => Number(r.header.revision));
      const total = CONCURRENT_CLIENTS * PUTS_PER_CLIENT;
      expect(new Set(revisions).size).toBe(total);
      expect(Math.min(...revisions)).toBe(before + 1);
      expect(Math.max(...revisions)).toBe(before + total);

      // Every put is visible from every client, with the revision its response gave.
      for (const cl of [client, clients[0], clients[CONCURRENT_CLIENTS - 1]]) {
        expect(await cl.getAll().prefix("conc/").count()).toBe(total);
      }
      const kvs = (await client.getAll().prefix("conc/").exec()).kvs;
      expect(kvs).toHaveLength(total);
      const revOf = new Map<string, number>();
      results.forEach((rs, c) => rs.forEach((r, i) => revOf.set(`conc/${c}/${i}`, Number(r.header.revision))));
      for (const kv of kvs) {
        const [, c, i] = kv.key.toString().split("/");
        expect(kv.value.toString()).toBe(`client ${c} put ${i}`);
        expect(Number(kv.mod_revision)).toBe(revOf.get(kv.key.toString()));
      }
    } finally {
      for (const cl of clients) cl.close();
    }
  });
});
