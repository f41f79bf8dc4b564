/**
 * The npm `etcd3` client's lease recipes against mergekv and, as the
 * reference, a real etcd: leases with keep-alive, loss and expiry; locks;
 * elections; STM transactions; namespaces. Raw Lease RPCs and etcdctl are
 * in lease.test.ts.
 */
import { Etcd3, EtcdLeaseInvalidError, EtcdLockFailedError, IKeyValue, Isolation, Lock } from "etcd3";
import { serveSuite, Target, TARGETS } from "../helpers/targets";

/** Concurrent STM clients and increments each: enough to conflict on every commit. */
const STM_CLIENTS = 6;
const STM_INCREMENTS = 5;
/** Conflicts a transaction may meet before it gives up: far more than the contention here causes. */
const STM_RETRIES = 1_000;
/** etcd3's `Isolation.Serializable` (a const enum, not importable at run time). */
const SERIALIZABLE = 1 as Isolation;
/** Lock contenders and critical sections each. */
const LOCK_CONTENDERS = 3;
const LOCK_ROUNDS = 3;
/** A condition a test waits for longer than this is not coming. */
const WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.each(TARGETS)("etcd3 lease recipes on %s", (name) => {
  let target: Target;
  let client: Etcd3;

  const leaseOf = async (key: string): Promise<string | undefined> => (await client.get(key).exec()).kvs[0]?.lease;
  const timeToLive = async (id: string): Promise<number> => Number((await client.leaseClient.leaseTimeToLive({ ID: id })).TTL);

  /** The etcd3 client's lock does not wait: a contender retries until it gets the lock. */
  async function acquireWhenFree(key: string): Promise<Lock> {
    for (;;) {
      try {
        return await client.lock(key).ttl(10).acquire();
      } catch (e) {
        if (!(e instanceof EtcdLockFailedError)) throw e;
        await sleep(20);
      }
    }
  }

  serveSuite(name, (t) => new Etcd3({ hosts: "http://" + t.endpoint }), (t, c) => { target = t; client = c; });

  describe("leases", () => {
    test("lease.put attaches keys; revoke deletes them", async () => {
      const lease = client.lease(30);
      await lease.put("lp/a").value("1");
      await lease.put("lp/b").value("2");
      await client.put("lp/free").value("3");
      const id = await lease.grant();
      expect([await leaseOf("lp/a"), await leaseOf("lp/b"), await leaseOf("lp/free")]).toEqual([id, id, "0"]);
      expect(await timeToLive(id)).toBeGreaterThan(25);
      await lease.revoke();
      expect(lease.revoked()).toBe(true);
      expect(await client.getAll().prefix("lp/").keys()).toEqual(["lp/free"]);
      expect(await timeToLive(id)).toBe(-1);
    });

    test("a lease revoked by the server emits 'lost'; a put with it then fails with EtcdLeaseInvalidError", async () => {
      const lease = client.lease(3);
      const id = await lease.grant();
      await lease.put("ll/a").value("1");
      const lost = new Promise<Error>((resolve) => lease.once("lost", resolve));
      await client.leaseClient.leaseRevoke({ ID: id }); // behind the lease object's back
      expect(await lost).toBeInstanceOf(EtcdLeaseInvalidError);
      expect(await client.get("ll/a").string()).toBeNull();
      await expect(client.put("ll/b").value("2").lease(id).exec()).rejects.toBeInstanceOf(EtcdLeaseInvalidError);
    });

    test("keep-alive keeps a lease alive well past its TTL; once released, it expires and its keys go", async () => {
      const lease = client.lease(2);
      let renewals = 0;
      lease.on("keepaliveSucceeded", () => renewals++);
      let lost = false;
      lease.on("lost", () => (lost = true));
      await lease.put("lk/a").value("1");
      await sleep(4_500);
      expect([await client.get("lk/a").string(), lost]).toEqual(["1", false]);
      expect(renewals).toBeGreaterThanOrEqual(3);
      lease.release(); // stop renewing; the server lets it run out
      const released = Date.now();
      await until(async () => (await client.get("lk/a").string()) === null, "the released lease to expire");
      expect(Date.now() - released).toBeGreaterThanOrEqual(500);
    });

    test("expiry without keep-alive: both keys' Delete events carry one revision", async () => {
      const watcher = await client.watch().prefix("le/").create();
      const deletes: IKeyValue[] = [];
      watcher.on("delete", (kv) => deletes.push(kv));
      try {
        const lease = client.lease(2, { autoKeepAlive: false });
        await lease.put("le/a").value("1");
        await lease.put("le/b").value("2");
        const written = Number((await client.get("le/b").exec()).header.revision);
        await until(() => deletes.length >= 2, "two Delete events");
        expect(deletes.map((kv) => kv.key.toString()).sort()).toEqual(["le/a", "le/b"]);
        expect(deletes[0].mod_revision).toBe(deletes[1].mod_revision);
        expect(Number(deletes[0].mod_revision)).toBe(written + 1);
      } finally {
        await watcher.cancel();
      }
    });
  });

  describe("locks", () => {
    test("a second contender is refused while the lock is held, and gets it once released", async () => {
      const first = await client.lock("locks/a").acquire();
      await expect(client.lock("locks/a").acquire()).rejects.toBeInstanceOf(EtcdLockFailedError);
      let acquired = false;
      const second = acquireWhenFree("locks/a").then((l) => { acquired = true; return l; });
      await sleep(500);
      expect(acquired).toBe(false);
      await first.release();
      const lock = await second;
      expect(await client.get("locks/a").exists()).toBe(true);
      await lock.release();
      expect(await client.get("locks/a").exists()).toBe(false);
    });

    test("contenders' critical sections never overlap and lose no update", async () => {
      await client.put("locks/counter").value(0);
      let inside = 0;
      let overlaps = 0;
      await Promise.all(Array.from({ length: LOCK_CONTENDERS }, async () => {
        for (let round = 0; round < LOCK_ROUNDS; round++) {
          const lock = await acquireWhenFree("locks/b");
          if (inside++ > 0) overlaps++;
          const n = (await client.get("locks/counter").number())!;
          await sleep(10);
          await client.put("locks/counter").value(n + 1);
          inside--;
          await lock.release();
        }
      }));
      expect(overlaps).toBe(0);
      expect(await client.get("locks/counter").number()).toBe(LOCK_CONTENDERS * LOCK_ROUNDS);
    });
  });

  test("elections: the first campaigner leads; the next is elected when it resigns; an observer follows", async () => {
    const election = client.election("el", 5);
    const observer = await election.observe();
    const seen: (string | undefined)[] = [];
    observer.on("change", (v) => seen.push(v));
    try {
      const alpha = election.campaign("alpha");
      await alpha.wait();
      expect(await election.leader()).toBe("alpha");
      await until(() => observer.leader() === "alpha", "the observer to see alpha");
      const beta = election.campaign("beta");
      let betaElected = false;
      const betaWait = beta.wait().then(() => (betaElected = true));
      await sleep(500);
      expect(betaElected).toBe(false);
      await alpha.resign();
      await betaWait;
      expect(await election.leader()).toBe("beta");
      await until(() => observer.leader() === "beta", "the observer to see beta");
      expect(seen.filter((v) => v !== undefined)).toEqual(["alpha", "beta"]);
      await beta.resign();
      expect(await election.leader()).toBeUndefined();
    } finally {
      await observer.cancel();
    }
  });

  test("STM: concurrent read-modify-write transactions lose no update", async () => {
    await client.put("stm/n").value(0);
    await client.put("stm/log").value("");
    await client.put("stm/single").value(0);
    await Promise.all(Array.from({ length: STM_CLIENTS }, async (_, i) => {
      for (let j = 0; j < STM_INCREMENTS; j++) {
        // Default isolation (SerializableSnapshot) on one key.
        await client.stm({ retries: STM_RETRIES }).transact(async (tx) => {
          await tx.put("stm/single").value((await tx.get("stm/single").number())! + 1);
        });
        // Two keys: Serializable, since etcd3 1.1.2's SerializableSnapshot compares written keys
        // against the earliest mod revision read, so keys last written at different revisions always conflict.
        await client.stm({ retries: STM_RETRIES, isolation: SERIALIZABLE }).transact(async (tx) => {
          const n = (await tx.get("stm/n").number())!;
          const log = (await tx.get("stm/log").string())!;
          await tx.put("stm/n").value(n + 1);
          await tx.put("stm/log").value(`${log}${i}`);
        });
      }
    }));
    const total = STM_CLIENTS * STM_INCREMENTS;
    expect(await client.get("stm/single").number()).toBe(total);
    expect(await client.get("stm/n").number()).toBe(total);
    expect((await client.get("stm/log").string())!.length).toBe(total); // both keys moved together
  });

  test("namespaces: keys, leases and locks under a prefix; deleting all stays inside it", async () => {
    const ns = client.namespace("ns/");
    await ns.put("a").value("1");
    await client.put("outside").value("x");
    expect(await client.get("ns/a").string()).toBe("1");
    expect(await ns.get("a").string()).toBe("1");
    expect(await ns.get("outside").string()).toBeNull();
    const lease = ns.lease(30);
    await lease.put("leased").value("v");
    expect(await leaseOf("ns/leased")).toBe(await lease.grant());
    const lock = await ns.lock("lk").acquire();
    expect(await client.get("ns/lk").exists()).toBe(true);
    expect(await ns.getAll().keys()).toEqual(["a", "leased", "lk"]);
    await lock.release();
    await lease.revoke();
    expect(await ns.getAll().keys()).toEqual(["a"]);
    await ns.delete().all();
    expect(await ns.getAll().keys()).toEqual([]);
    expect(await client.get("outside").string()).toBe("x");
  });
});
