/*
 * Leases in the backend with real frontends (Executors) wired in-process over
 * an in-memory store that outlives a "restart": revocation and expiry delete
 * every attached key at one revision with Delete events, frontends learn of
 * grants and revocations, and leases survive a restart with their full TTL.
 */
import { randomBytes } from "node:crypto";
import { Backend } from "../../src/backend/backend";
import { Replica } from "../../src/backend/replica";
import { ownerOf, bucketOf } from "../../src/backend/buckets";
import { MvccEvent } from "../../src/backend/mvcc";
import { Executor } from "../../src/frontend/executor";
import { MemoryStore } from "../../src/persist/memory-store";
import { ActorId, leaseKey } from "../../src/persist/encoding";
import { KvRequest, PutRequest } from "../../src/frontend/requests";
import { errorCode, key, putRequest, rangeRequest, text } from "../helpers/frontend";

const FRONTENDS = 2;

interface Running {
  backend: Backend;
  frontends: Executor[];
  /** Every durable event the backend published, in order. */
  events: MvccEvent[];
}

/**
 * Opens a backend over `store` with FRONTENDS executors; frontend `deaf` never
 * hears of grants or revocations; `expire`: start lease expiry, as serving does.
 */
async function start(store: MemoryStore, deaf = -1, expire = true): Promise<Running> {
  const frontends: Executor[] = [];
  const events: MvccEvent[] = [];
  const backend = await Backend.open(store, false, {
    internalReplication: 1,
    frontends: FRONTENDS,
    snapshotCount: Number.MAX_SAFE_INTEGER,
    broadcast: (m) => {
      frontends.forEach((f, i) => {
        if (m.type === "applied") f.onApplied(m.entries);
        else if (m.type === "compact") f.onCompact(m.rev);
        else if (i !== deaf) f.onLeases(m.changes);
      });
    },
    onEvents: (e) => events.push(...e),
  });
  const bootstrap = backend.takeBootstrap();
  for (let i = 0; i < FRONTENDS; i++) {
    const replica = new Replica(randomBytes(16).toString("hex") as ActorId, { owns: (b) => ownerOf(b, FRONTENDS) === i });
    replica.bootstrap(bootstrap);
    frontends.push(new Executor(replica, (e) => backend.submit([e]), async (buckets) => backend.lend(buckets), bootstrap.leases));
  }
  if (expire) backend.startLeaseExpiry(); // as the server does once it is about to serve
  return { backend, frontends, events };
}

const put = (k: string, v: string, options: Partial<PutRequest> = {}): KvRequest => ({ kind: "put", req: putRequest(k, v, options) });

async function read(frontend: Executor, k: string): Promise<{ value: string; lease: number; create: number; version: number } | undefined> {
  const { result } = await frontend.execute({ kind: "range", req: rangeRequest(k) }, 0);
  const kv = (result as { kvs: { value: Uint8Array; lease: number; create: number; version: number }[] }).kvs[0];
  return kv && { value: text(kv.value), lease: kv.lease, create: kv.create, version: kv.version };
}

/** Resolves once `check` holds, polling; fails after `timeoutMs`. */
async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await sleep(20);
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first key of the form `prefix<n>` that frontend `owner` owns. */
function keyOwnedBy(owner: number, prefix: string): string {
  for (let n = 0; ; n++) if (ownerOf(bucketOf(key(`${prefix}${n}`)), FRONTENDS) === owner) return `${prefix}${n}`;
}

let store: MemoryStore;
let running: Running[] = [];
beforeEach(async () => {
  store = new MemoryStore();
  await store.open();
  running = [];
});
afterEach(async () => {
  for (const r of running) await r.backend.close();
});
const open = async (deaf = -1, expire = true) => {
  const r = await start(store, deaf, expire);
  running.push(r);
  return r;
};

test("revoke deletes every attached key at one revision, with a Delete event each, and leaves the others", async () => {
  const { backend, frontends, events } = await open();
  const { id } = await backend.grantLease(0, 60);
  for (let i = 0; i < 6; i++) await frontends[i % FRONTENDS].execute(put(`leased/${i}`, `v${i}`, { lease: id }), 0);
  await frontends[0].execute(put("free", "x"), 0);
  expect((await read(frontends[1], "leased/3"))?.lease).toBe(id);
  expect(backend.leases.get(id)?.keys.size).toBe(6);
  const before = backend.revision;
  const seen = events.length;

  const rev = await backend.revokeLease(id);
  expect(rev).toBe(before + 1);
  expect(backend.revision).toBe(rev);
  const deletes = events.slice(seen);
  expect(deletes.map((e) => [e.type, text(Buffer.from(e.kv.key, "latin1")), e.kv.mod, e.prev?.lease]).sort()).toEqual(
    [0, 1, 2, 3, 4, 5].map((i) => ["delete", `leased/${i}`, rev, id]));
  for (const f of frontends) {
    for (let i = 0; i < 6; i++) expect(await read(f, `leased/${i}`)).toBeUndefined();
    expect((await read(f, "free"))?.value).toBe("x");
    // Every frontend heard of the revocation: the lease can no longer be named.
    expect(await errorCode(f.execute(put("again", "v", { lease: id }), 0))).toBe("LeaseNotFound");
  }
  expect(backend.leases.has(id)).toBe(false);
  expect(await errorCode(backend.revokeLease(id))).toBe("LeaseNotFound");
});

test("revoking a lease with no live keys changes no revision; an unknown lease is LeaseNotFound", async () => {
  const { backend, frontends } = await open();
  const { id } = await backend.grantLease(0, 60);
  await frontends[0].execute(put("k", "v", { lease: id }), 0);
  await frontends[0].execute(put("k", "w"), 0); // re-put without the lease: detached
  await frontends[1].execute(put("gone", "v", { lease: id }), 0);
  await frontends[1].execute({ kind: "deleteRange", req: { key: key("gone"), rangeEnd: key(""), prevKv: false } }, 0);
  expect(backend.leases.get(id)?.keys.size).toBe(0);
  const before = backend.revision;
  expect(await backend.revokeLease(id)).toBe(before);
  expect(backend.revision).toBe(before);
  expect((await read(frontends[0], "k"))?.value).toBe("w");
  expect(await errorCode(backend.revokeLease(123456))).toBe("LeaseNotFound");
});

test("grant errors: an existing id is LeaseExists, a huge TTL LeaseTTLTooLarge; TTL 1 is granted as 2", async () => {
  const { backend, frontends } = await open();
  expect(await backend.grantLease(77, 1)).toEqual({ id: 77, ttlSeconds: 2 });
  expect(await errorCode(backend.grantLease(77, 10))).toBe("LeaseExists");
  expect(await errorCode(backend.grantLease(0, 9e9 + 1))).toBe("LeaseTTLTooLarge");
  // Two concurrent grants of one id: exactly one wins.
  const both = await Promise.allSettled([backend.grantLease(78, 10), backend.grantLease(78, 10)]);
  expect(both.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
  for (const f of frontends) await f.execute(put("k", "v", { lease: 77 }), 0); // frontends heard of the grant
});

test("expiry deletes the attached keys by itself, at one revision; keep-alive defers it", async () => {
  const { backend, frontends, events } = await open();
  const { id } = await backend.grantLease(0, 3);
  const granted = Date.now(); // the lease is due at or before granted + 3 s
  await frontends[0].execute(put("exp/a", "1", { lease: id }), 0);
  await frontends[1].execute(put("exp/b", "2", { lease: id }), 0);
  await frontends[0].execute(put("exp/c", "3"), 0);
  await sleep(granted + 1_500 - Date.now());
  const renewed = Date.now(); // now due at or after renewed + 3 s
  expect(backend.leases.keepAlive(id)).toBe(3);
  await sleep(granted + 3_500 - Date.now());
  expect(backend.leases.has(id)).toBe(true); // past the original TTL, alive thanks to the keep-alive
  expect(await read(frontends[1], "exp/a")).toBeDefined();
  const seen = events.length;
  await until(() => !backend.leases.has(id) && events.length >= seen + 2, 3_000);
  expect(Date.now() - renewed).toBeGreaterThanOrEqual(3_000);
  const deletes = events.slice(seen);
  expect(deletes.map((e) => e.type)).toEqual(["delete", "delete"]);
  expect(new Set(deletes.map((e) => e.kv.mod)).size).toBe(1);
  expect(deletes[0].kv.mod).toBe(backend.revision);
  for (const f of frontends) {
    expect([await read(f, "exp/a"), await read(f, "exp/b")]).toEqual([undefined, undefined]);
    expect((await read(f, "exp/c"))?.value).toBe("3");
  }
});

test("a Put naming a lease revoked meanwhile (a frontend not told yet) is deleted right after", async () => {
  const { backend, frontends, events } = await open(1);
  const { id } = await backend.grantLease(5, 60);
  frontends[1].onLeases([{ id, exists: true }]); // deaf frontend 1 learns of the grant by hand, never of the revocation
  await backend.revokeLease(id);
  const { revision } = await frontends[1].execute(put("late", "v", { lease: id }), 0);
  await until(() => events.some((e) => e.type === "delete" && e.kv.mod > revision), 2_000);
  for (const f of frontends) expect(await read(f, "late")).toBeUndefined();
});

test("a write that reached the backend before a revoke is ordered before it: a key re-put without the lease survives", async () => {
  const { backend, frontends, events } = await open();
  const { id } = await backend.grantLease(0, 60);
  const k = keyOwnedBy(0, "race/");
  await frontends[0].execute(put(k, "leased", { lease: id }), 0);
  const created = (await read(frontends[0], k))!.create;
  const seen = events.length;
  // The frontend owns the key's bucket: its envelope reaches the backend synchronously, before the revoke.
  const reput = frontends[0].execute(put(k, "free"), 0);
  const revoked = backend.revokeLease(id);
  expect((await reput).revision).toBeGreaterThan(created);
  await revoked;
  await sleep(50);
  expect(events.slice(seen).map((e) => e.type)).toEqual(["put"]);
  for (const f of frontends) expect(await read(f, k)).toEqual({ value: "free", lease: 0, create: created, version: 2 });
});

describe("restart", () => {
  async function restart(r: Running, snapshot: boolean): Promise<Running> {
    if (snapshot) await r.backend.snapshot();
    await r.backend.close();
    running = running.filter((x) => x !== r);
    return open();
  }

  test.each([true, false])("leases survive (snapshot first: %s) with their full TTL again; keys re-attach; revoked leases stay gone", async (snapshot) => {
    const first = await open();
    const kept = await first.backend.grantLease(0, 30);
    const empty = await first.backend.grantLease(1234, 50);
    const revoked = await first.backend.grantLease(0, 30);
    await first.frontends[0].execute(put("a", "1", { lease: kept.id }), 0);
    await first.frontends[1].execute(put("b", "2", { lease: kept.id }), 0);
    await first.frontends[1].execute(put("c", "3", { lease: revoked.id }), 0);
    await first.backend.revokeLease(revoked.id);
    first.backend.leases.get(kept.id)!.expiresAtMs = Date.now() + 1_000; // as if most of its TTL had passed
    expect(first.backend.leases.remainingSeconds(first.backend.leases.get(kept.id)!)).toBeLessThanOrEqual(1);
    const rev = first.backend.revision;

    const second = await restart(first, snapshot);
    const leases = second.backend.leases;
    expect(leases.ids().sort()).toEqual([kept.id, empty.id].sort());
    expect(leases.get(kept.id)!.ttlSeconds).toBe(30);
    expect(leases.remainingSeconds(leases.get(kept.id)!)).toBeGreaterThanOrEqual(29); // truncated: a moment has passed
    expect(leases.get(empty.id)!.ttlSeconds).toBe(50);
    expect([...leases.get(kept.id)!.keys].sort()).toEqual([key("a"), key("b")]);
    expect(second.backend.revision).toBe(rev);
    for (const f of second.frontends) {
      expect(await errorCode(f.execute(put("x", "v", { lease: revoked.id }), 0))).toBe("LeaseNotFound");
      await f.execute(put("y", "v", { lease: empty.id }), 0);
    }
    const revokeRev = await second.backend.revokeLease(kept.id);
    expect(revokeRev).toBe(second.backend.revision);
    for (const f of second.frontends) expect([await read(f, "a"), await read(f, "b")]).toEqual([undefined, undefined]);
  });

  test("concurrent grants of one id persist the winner's TTL; a grant racing a revoke of its id is kept", async () => {
    const first = await open();
    const both = await Promise.allSettled([first.backend.grantLease(78, 10), first.backend.grantLease(78, 99)]);
    expect(both.map((r) => r.status)).toEqual(["fulfilled", "rejected"]);
    await first.backend.grantLease(5, 20);
    const revoked = first.backend.revokeLease(5);
    const regranted = first.backend.grantLease(5, 40); // arrives after the revoke began
    await Promise.all([revoked, regranted]);
    expect(first.backend.leases.get(5)?.ttlSeconds).toBe(40);

    const second = await restart(first, false);
    expect(second.backend.leases.get(78)?.ttlSeconds).toBe(10);
    expect(second.backend.leases.get(5)?.ttlSeconds).toBe(40);
  });

  test("lease clocks start when serving starts, not when recovery does", async () => {
    const first = await open();
    const { id } = await first.backend.grantLease(0, 2);
    await first.frontends[0].execute(put("slow-start", "1", { lease: id }), 0);
    await first.backend.close();
    running = [];
    const second = await open(-1, false);
    await sleep(2_500); // a long recovery: the lease's TTL passes before serving
    expect(second.backend.leases.has(id)).toBe(true); // not revoked meanwhile
    second.backend.startLeaseExpiry();
    // The full TTL from now (in whole seconds it reads 1 as soon as a millisecond has passed).
    const remainingMs = second.backend.leases.get(id)!.expiresAtMs - Date.now();
    expect(remainingMs).toBeGreaterThan(1_900);
    expect(remainingMs).toBeLessThanOrEqual(2_000);
    await sleep(500);
    expect(second.backend.leases.has(id)).toBe(true);
    expect((await read(second.frontends[0], "slow-start"))?.value).toBe("1");
    await until(() => !second.backend.leases.has(id), 3_000);
  });

  test("keys whose lease record is gone are deleted when expiry starts, not at open: the frontends are there to take the deletion", async () => {
    const first = await open();
    const { id } = await first.backend.grantLease(0, 30);
    await first.frontends[0].execute(put("orphan", "1", { lease: id }), 0);
    const rev = first.backend.revision;
    await first.backend.close();
    running = [];
    await store.batch([{ type: "del", key: leaseKey(id) }], true);
    const second = await open(-1, false);
    await sleep(300); // a recovery still starting its frontends: nothing is deleted behind their back
    expect([second.backend.revision, second.events]).toEqual([rev, []]);
    for (const f of second.frontends) expect((await read(f, "orphan"))?.value).toBe("1");
    second.backend.startLeaseExpiry();
    await until(() => second.backend.revision > rev, 2_000);
    expect(second.events.map((e) => [e.type, e.kv.key])).toEqual([["delete", key("orphan")]]);
    for (const f of second.frontends) expect(await read(f, "orphan")).toBeUndefined();
  });

  test("keys whose lease record is gone are deleted at start", async () => {
    const first = await open();
    const { id } = await first.backend.grantLease(0, 30);
    await first.frontends[0].execute(put("orphan", "1", { lease: id }), 0);
    await first.frontends[0].execute(put("plain", "2"), 0);
    const rev = first.backend.revision;
    await first.backend.close();
    running = [];
    await store.batch([{ type: "del", key: leaseKey(id) }], true); // as if the lease's record were lost
    const second = await open();
    await until(() => second.backend.revision > rev, 2_000);
    expect(second.events.map((e) => e.type)).toEqual(["delete"]);
    for (const f of second.frontends) {
      expect(await read(f, "orphan")).toBeUndefined();
      expect((await read(f, "plain"))?.value).toBe("2");
    }
  });
});
