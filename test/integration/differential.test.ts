/**
 * Differential: one seeded random sequence of KV, Txn, lease and compaction
 * requests, sent one at a time to a fresh etcd and a fresh mergekv. Both
 * start at revision 1 and every write takes the next revision on both, so
 * every answer must be the same, field for field (headers' member and
 * cluster ids and raft term aside), errors included (code and message);
 * so must the keyspace after each request, the events a watch of the whole
 * keyspace (with prev_kv) received over the run, the replay of a watch
 * opened at a past revision every 50 requests, and, every 50 requests too,
 * what a watch of a key, a prefix or everything, with a filter or none,
 * with prev_kv or not, receives from a past revision up to two writes of
 * its own.
 * The keyspace is small so that requests collide: overwrites, deletes of
 * what a Txn just wrote, ranges over history, compares on every target.
 * The seed is printed; MERGEKV_TEST_SEED replays a run.
 */
import * as grpc from "@grpc/grpc-js";
import { startTarget, Target } from "../helpers/targets";
import { b, Msg, rawClient, RawClient, RawWatchStream, watchStream } from "../helpers/grpc";
import { chooseSeed, SeededRandom } from "../helpers/random";

/** Requests in one run: about 10 s on both servers together. */
const STEPS = 600;
const KEYS = ["d/a", "d/b", "d/c", "d/d", "d/e", "d/f", "e/a", "e/b"];
/** Lease ids chosen by the test (the server's own choice would differ between the two). */
const LEASE_IDS = ["1001", "1002", "1003"];

/** `putThenDelete`: a Txn from the generator's putThenDelete, counted by the run. */
type Call = { service: "KV" | "Lease"; method: string; req: Msg; putThenDelete?: true };

/** The state the generator keeps to aim some requests at live revisions and leases. */
interface Model { rev: number; compacted: number; leases: Set<string> }

/**
 * `forAuth`: only requests whose permission checks etcd 3.4 and mergekv
 * make alike: no nested Txn (etcd 3.4 checks none of a nested Txn's ops),
 * no empty Txn (etcd runs one for an anonymous caller), both shown by a
 * test at the end; and no range that ends before it starts (etcd's check
 * of one depends on how its permissions' interval tree is shaped; mergekv
 * allows it, as it holds no key).
 */
function generator(rnd: SeededRandom, model: Model, forAuth = false): () => Call {
  const key = () => rnd.pick(KEYS);
  const value = () => `v${rnd.below(4)}`;
  /** A key, a prefix, everything from a key, or everything. */
  const span = (): Msg => {
    switch (rnd.below(4)) {
      case 0: return { key: b(key()) };
      case 1: {
        const prefix = rnd.pick(["d/", "e/"]);
        return { key: b(prefix), range_end: b(forAuth || rnd.below(4) > 0 ? `${prefix[0]}0` : rnd.pick(["d0", "e0"])) };
      }
      case 2: return { key: b(key()), range_end: Buffer.of(0) };
      default: return { key: Buffer.of(0), range_end: Buffer.of(0) };
    }
  };
  const revision = () => {
    const r = rnd.below(10);
    if (r < 5) return "0";
    if (r < 9) return String(Math.max(1, model.compacted) + rnd.below(Math.max(1, model.rev - model.compacted + 1)));
    return String(model.rev + 1 + rnd.below(3)); // a future revision: an error on both
  };
  const range = (): Msg => ({
    ...span(),
    limit: rnd.below(3) === 0 ? String(rnd.below(4)) : "0",
    revision: revision(),
    sort_order: rnd.pick(["NONE", "NONE", "ASCEND", "DESCEND"]),
    sort_target: rnd.pick(["KEY", "KEY", "VERSION", "CREATE", "MOD", "VALUE"]),
    keys_only: rnd.below(5) === 0,
    count_only: rnd.below(8) === 0,
    serializable: rnd.below(3) === 0,
    min_mod_revision: rnd.below(6) === 0 ? String(rnd.below(model.rev + 1)) : "0",
    max_create_revision: rnd.below(6) === 0 ? String(rnd.below(model.rev + 1)) : "0",
  });
  const lease = () => (model.leases.size > 0 && rnd.below(3) === 0 ? rnd.pick([...model.leases]) : "0");
  /** Now and then with ignore_value or ignore_lease, each with or without the field it says to leave alone (an error on both then). */
  const put = (): Msg => {
    const p: Msg = { key: b(key()), value: b(value()), prev_kv: rnd.below(2) === 0, lease: lease() };
    const r = rnd.below(12);
    if (r === 0) return { ...p, ignore_value: true, value: rnd.below(2) === 0 ? Buffer.alloc(0) : p.value };
    if (r === 1) return { ...p, ignore_lease: true };
    return p;
  };
  const del = (): Msg => ({ ...span(), prev_kv: rnd.below(2) === 0 });
  /**
   * An op of a Txn branch at `depth`: a nested Txn may delete what an
   * earlier nested Txn put (etcd 3.4 allows it, and sends both events).
   */
  const requestOp = (depth: number): Msg => {
    const r = rnd.below(depth > 0 || forAuth ? 3 : 4);
    if (r === 0) return { request_put: put() };
    if (r === 1) return { request_delete_range: del() };
    if (r === 2) return { request_range: { ...range(), revision: "0" } };
    return { request_txn: txn(depth + 1) };
  };
  const compare = (): Msg => {
    const target = rnd.pick(["VALUE", "VERSION", "CREATE", "MOD"]);
    const operand: Msg = target === "VALUE" ? { value: b(value()) } : target === "VERSION" ? { version: String(rnd.below(4)) } : target === "CREATE" ? { create_revision: String(rnd.below(model.rev + 2)) } : { mod_revision: String(rnd.below(model.rev + 2)) };
    const k = key();
    return { key: b(k), result: rnd.pick(["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]), target, ...operand, ...(rnd.below(6) === 0 ? { range_end: b(forAuth ? `${k[0]}0` : "d0") } : {}) };
  };
  const txn = (depth: number): Msg => {
    const t = {
      compare: Array.from({ length: rnd.below(3) + (forAuth ? 1 : 0) }, compare),
      success: Array.from({ length: rnd.below(4) }, () => requestOp(depth)),
      failure: Array.from({ length: rnd.below(3) }, () => requestOp(depth)),
    };
    return depth === 0 && deletesFromKey(t) ? withoutIgnores(t) : t;
  };
  /** A Txn whose nested Txns put keys that a later nested Txn deletes (the key, or its prefix), reads between. */
  const putThenDelete = (): Msg => {
    const put1 = put(), put2 = put();
    const k = put1.key.toString();
    const nested = (...ops: Msg[]): Msg => ({ request_txn: { success: ops } });
    const doomed = rnd.below(2) === 0 ? { key: put1.key } : { key: b(k.slice(0, 2)), range_end: b(`${k[0]}0`) };
    return {
      compare: Array.from({ length: rnd.below(2) }, compare),
      success: [nested({ request_put: put1 }), nested({ request_put: put2 }), nested({ request_range: { ...range(), revision: "0" } }), nested({ request_delete_range: { ...doomed, prev_kv: rnd.below(2) === 0 } })],
      failure: [nested({ request_put: put1 })],
    };
  };
  return () => {
    const r = rnd.below(100);
    if (r < 30) return { service: "KV", method: "Put", req: put() };
    if (r < 45) return { service: "KV", method: "Range", req: range() };
    if (r < 55) return { service: "KV", method: "DeleteRange", req: del() };
    if (r < 80) return { service: "KV", method: "Txn", req: txn(0) };
    if (r < 85) return forAuth ? { service: "KV", method: "Txn", req: txn(0) } : { service: "KV", method: "Txn", req: putThenDelete(), putThenDelete: true };
    if (r < 89) return { service: "KV", method: "Compact", req: { revision: String(Math.max(1, model.compacted) + rnd.below(model.rev - model.compacted + 2)) } };
    if (r < 94) return { service: "Lease", method: "LeaseGrant", req: { ID: rnd.pick(LEASE_IDS), TTL: "600" } };
    if (r < 97) return { service: "Lease", method: "LeaseRevoke", req: { ID: rnd.pick(LEASE_IDS) } };
    return { service: "Lease", method: "LeaseTimeToLive", req: { ID: rnd.pick(LEASE_IDS), keys: true } };
  };
}

/** An answer with what differs between any two servers taken out: headers' ids and term, a lease's remaining TTL. */
function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (Buffer.isBuffer(value)) return value.toString("latin1");
  if (value === null || typeof value !== "object") return value;
  const out: Msg = {};
  for (const [k, v] of Object.entries(value as Msg)) {
    if (k === "cluster_id" || k === "member_id" || k === "raft_term") continue;
    out[k] = comparable(v);
  }
  return out;
}

async function answer(c: RawClient, call: Call): Promise<unknown> {
  try {
    const r = await c.call(call.service, call.method, call.req);
    if (call.method === "LeaseTimeToLive" && Number(r.TTL) > 0) r.TTL = "live"; // seconds left tick on their own clocks
    return comparable(r);
  } catch (e) {
    const err = e as grpc.ServiceError;
    if (typeof err.code !== "number") throw e;
    return { error: err.code, message: err.details };
  }
}

/** A watch's events, comparable, up to and including the put of "z/end". */
async function eventsUntilEnd(w: RawWatchStream): Promise<unknown[]> {
  const events: unknown[] = [];
  for (;;) {
    const r = await w.next();
    for (const e of r.events ?? []) {
      events.push(comparable(e));
      if (Buffer.from(e.kv.key).toString() === "z/end") return events;
    }
  }
}

/** A fresh server of kind `name` and a client of it, for the tests of one describe block. */
function freshTarget(name: "etcd" | "mergekv"): { target: Target; c: RawClient } {
  const on = {} as { target: Target; c: RawClient };
  beforeAll(async () => { on.target = await startTarget(name); on.c = rawClient(on.target.endpoint); }, 60_000);
  afterAll(async () => { on.c?.close(); await on.target?.stop(); });
  return on;
}

/** Whether a Txn (nested ones included) has a from-key delete (range_end "\0"). */
function deletesFromKey(t: Msg): boolean {
  return [...t.success, ...t.failure].some((op: Msg) =>
    (op.request_delete_range && Buffer.from(op.request_delete_range.range_end ?? []).equals(Buffer.of(0))) || (op.request_txn && deletesFromKey(op.request_txn)));
}

/**
 * The Txn with its puts' ignore_value and ignore_lease dropped: etcd 3.4
 * panics on a Txn whose such put follows a from-key delete of its key (its
 * pre-check reads the key before the Txn; see the test at the end), and the
 * sequence goes on against a live etcd.
 */
function withoutIgnores(t: Msg): Msg {
  const op = (o: Msg): Msg => {
    if (o.request_put) { const { ignore_value: _v, ignore_lease: _l, ...put } = o.request_put; return { request_put: put }; }
    if (o.request_txn) return { request_txn: withoutIgnores(o.request_txn) };
    return o;
  };
  return { ...t, success: t.success.map(op), failure: t.failure.map(op) };
}

/** A watch stream with one watch created (its created answer taken). */
async function openWatch(t: Target, create: Msg): Promise<RawWatchStream> {
  const w = watchStream(t.endpoint);
  w.send({ create_request: create });
  expect((await w.next()).created).toBe(true);
  return w;
}

/** A watch's events, comparable and in the order they came, up to the one `last` says ends them; closes it. */
async function eventsUntil(w: RawWatchStream, last: (e: Msg) => boolean): Promise<unknown[]> {
  const events: Msg[] = [];
  try {
    for (let done = false; !done; ) {
      for (const e of (await w.next()).events ?? []) {
        events.push(e);
        if (last(e)) {
          done = true; // what came with it in one answer is cut: the servers batch differently
          break;
        }
      }
    }
  } finally {
    w.close();
  }
  return events.map(comparable);
}

/**
 * A new watch of the whole keyspace from `start`: the events it replays up to
 * revision `upTo`, or how it was cancelled (a start below the compact revision).
 */
async function historyFrom(t: Target, start: string, upTo: number): Promise<unknown> {
  const w = watchStream(t.endpoint);
  try {
    w.send({ create_request: { key: Buffer.of(0), range_end: Buffer.of(0), start_revision: start, prev_kv: true } });
    const events: unknown[] = [];
    let last = Number(start) - 1;
    while (last < upTo) {
      const r = await w.next();
      if (r.canceled) return { canceled: true, compact_revision: r.compact_revision, reason: r.cancel_reason, events };
      for (const e of r.events ?? []) {
        events.push(comparable(e));
        last = Math.max(last, Number(e.kv.mod_revision));
      }
      if (r.created && (r.events ?? []).length === 0 && Number(r.header.revision) <= last) break; // nothing to replay
    }
    return { events }; // in order: a Txn's events as its ops made them (etcd's sub-revisions) on both
  } finally {
    w.close();
  }
}

describe("etcd and mergekv answer the same random sequence the same way", () => {
  let etcd: Target, mergekv: Target;
  let ce: RawClient, cm: RawClient;

  beforeAll(async () => {
    [etcd, mergekv] = await Promise.all([startTarget("etcd"), startTarget("mergekv")]);
    ce = rawClient(etcd.endpoint);
    cm = rawClient(mergekv.endpoint);
  }, 60_000);

  afterAll(async () => {
    ce?.close();
    cm?.close();
    await Promise.all([etcd?.stop(), mergekv?.stop()]);
  });

  test(`${STEPS} requests, answer for answer`, async () => {
    const seed = chooseSeed("differential etcd/mergekv");
    const model: Model = { rev: 1, compacted: 0, leases: new Set() };
    const next = generator(new SeededRandom(seed), model);
    const rnd = new SeededRandom(seed + 1); // the watches' options, apart from the requests
    const watches = [etcd, mergekv].map((t) => watchStream(t.endpoint));
    for (const w of watches) {
      w.send({ create_request: { key: Buffer.of(0), range_end: Buffer.of(0), prev_kv: true } });
      expect((await w.next()).created).toBe(true);
    }
    let writes = 0, errors = 0, putsThenDeletes = 0;
    for (let step = 0; step < STEPS; step++) {
      const call = next();
      const [fromEtcd, fromMergekv] = [await answer(ce, call), await answer(cm, call)];
      if (JSON.stringify(fromEtcd) !== JSON.stringify(fromMergekv)) {
        // The failing step, its request and both answers (and the seed, printed above) are the report.
        console.log(`step ${step} of seed ${seed}: ${call.service}.${call.method} ${JSON.stringify(comparable(call.req))}`);
        expect({ step, seed, call: comparable(call), mergekv: fromMergekv }).toEqual({ step, seed, call: comparable(call), mergekv: fromEtcd });
      }
      // The whole keyspace after every request, so that a divergence an answer hides (a lease's keys, a
      // delete inside a Txn branch) shows at the step that made it.
      const all: Call = { service: "KV", method: "Range", req: { key: Buffer.of(0), range_end: Buffer.of(0) } };
      const [stateEtcd, stateMergekv] = [await answer(ce, all), await answer(cm, all)];
      if (JSON.stringify(stateEtcd) !== JSON.stringify(stateMergekv)) {
        console.log(`after step ${step} of seed ${seed}: ${call.service}.${call.method} ${JSON.stringify(comparable(call.req))}`);
        expect({ after: step, seed, state: stateMergekv }).toEqual({ after: step, seed, state: stateEtcd });
      }
      const a = fromEtcd as Msg;
      if (a.error !== undefined) errors++;
      if (call.putThenDelete && a.succeeded) putsThenDeletes++;
      const rev = Number(a.header?.revision ?? model.rev);
      if (rev > model.rev) writes++;
      model.rev = Math.max(model.rev, rev);
      if (call.method === "Compact" && a.error === undefined) model.compacted = Number(call.req.revision);
      if (call.method === "LeaseGrant" && a.error === undefined) model.leases.add(call.req.ID);
      if (call.method === "LeaseRevoke" && a.error === undefined) model.leases.delete(call.req.ID);
      if (step % 50 === 24) {
        // A filtered watch of part of the keyspace from a past revision, ended by two writes of its own.
        const start = String(model.compacted + 1 + ((seed >>> 0) + step) % Math.max(1, model.rev - model.compacted));
        const options: Msg = {
          ...rnd.pick([{ key: Buffer.of(0), range_end: Buffer.of(0) }, { key: b("d/"), range_end: b("d0") }, { key: b("d/a") }]),
          filters: rnd.pick([[], ["Noput"], ["Nodelete"]]), // the etcd3 package's proto spells them so
          prev_kv: rnd.below(2) === 0,
          start_revision: start,
        };
        const watches = await Promise.all([etcd, mergekv].map((t) => openWatch(t, options)));
        let sentinelRev = 0;
        for (const c of [ce, cm]) {
          await c.call("KV", "Put", { key: b("d/a"), value: b("sentinel") });
          sentinelRev = Number((await c.call("KV", "DeleteRange", { key: b("d/a") })).header.revision);
        }
        model.rev = sentinelRev;
        // The end: the sentinel's delete (its put, with puts filtered out); an earlier sentinel's put has an older revision.
        const ends = (e: Msg) => Buffer.from(e.kv.key).toString() === "d/a" && Number(e.kv.mod_revision) === (options.filters.includes("Noput") ? sentinelRev : sentinelRev - 1);
        const [seenEtcd, seenMergekv] = await Promise.all(watches.map((w) => eventsUntil(w, ends))).catch((e: Error) => {
          throw new Error(`filtered watch ${JSON.stringify(comparable(options))} at step ${step} of seed ${seed} (revision ${model.rev}): ${e.message}`);
        });
        if (JSON.stringify(seenEtcd) !== JSON.stringify(seenMergekv)) {
          console.log(`filtered watch ${JSON.stringify(comparable(options))} at step ${step} of seed ${seed}`);
          expect({ seed, step, mergekv: seenMergekv }).toEqual({ seed, step, mergekv: seenEtcd });
        }
      }
      if (step % 50 === 49) {
        // A watch from a past revision: its replay of history, or its cancellation below the compact revision.
        // Not at the compact revision itself: etcd 3.4 misses a delete made exactly there (a known etcd
        // bug, in etcd-semantics.md's list); mergekv sends it (test/backend/watch-hub.test.ts).
        const above = model.compacted + 1 + ((seed >>> 0) + step) % Math.max(1, model.rev - model.compacted);
        const start = String(step % 100 === 99 && model.compacted > 1 ? model.compacted - 1 : Math.min(above, model.rev));
        const [replayEtcd, replayMergekv] = await Promise.all([etcd, mergekv].map((t) => historyFrom(t, start, model.rev)));
        if (JSON.stringify(replayEtcd) !== JSON.stringify(replayMergekv)) {
          console.log(`history from ${start} at step ${step} of seed ${seed} (revision ${model.rev}, compacted at ${model.compacted})`);
          expect({ seed, step, start, mergekv: replayMergekv }).toEqual({ seed, step, start, mergekv: replayEtcd });
        }
      }
    }
    // The run exercised something: writes advanced the revision, and some requests were refused.
    expect(writes).toBeGreaterThan(STEPS / 4);
    expect(errors).toBeGreaterThan(0);
    expect(putsThenDeletes).toBeGreaterThan(0); // Txns putting keys a later nested Txn deleted
    // Every event, in order: a last put marks the end of the run on both streams.
    await Promise.all([ce, cm].map((c) => c.call("KV", "Put", { key: b("z/end"), value: b("") })));
    const [eventsEtcd, eventsMergekv] = await Promise.all(watches.map((w) => eventsUntilEnd(w)));
    for (const w of watches) w.close();
    expect(eventsEtcd.length).toBeGreaterThan(writes);
    const first = eventsEtcd.findIndex((e, i) => JSON.stringify(e) !== JSON.stringify(eventsMergekv[i]));
    if (first !== -1 || eventsEtcd.length !== eventsMergekv.length) {
      expect({ seed, fromEvent: first, mergekv: eventsMergekv.slice(first, first + 3) }).toEqual({ seed, fromEvent: first, mergekv: eventsEtcd.slice(first, first + 3) });
    }
  }, 120_000);
});

describe.each(["etcd", "mergekv"] as const)("a Txn that writes one key twice, where etcd 3.4's duplicate check lets it, on %s", (name) => {
  const on = freshTarget(name);

  test("a from-key delete and a put of a key it covers, in either order: applied in op order (etcd 3.4's duplicate check passes a range_end of \"\\0\")", async () => {
    await on.c.call("KV", "Put", { key: b("f/a"), value: b("1") });
    const watch = watchStream(on.target.endpoint);
    try {
      watch.send({ create_request: { key: b("f/"), range_end: b("f0"), prev_kv: true } });
      expect((await watch.next()).created).toBe(true);
      const fromF = { request_delete_range: { key: b("f/"), range_end: Buffer.of(0), prev_kv: true } };
      const putA = { request_put: { key: b("f/a"), value: b("2"), prev_kv: true } };
      const first = await on.c.call("KV", "Txn", { success: [fromF, putA] });
      const rev = first.header.revision;
      expect(first.responses[1].response_put.prev_kv).toBeNull(); // deleted by the op before
      const [kv] = (await on.c.call("KV", "Range", { key: b("f/a") })).kvs;
      expect([kv.value.toString(), kv.version, kv.create_revision]).toEqual(["2", "1", rev]); // created anew
      await on.c.call("KV", "Txn", { success: [putA, fromF] });
      expect((await on.c.call("KV", "Range", { key: b("f/"), range_end: Buffer.of(0) })).kvs).toEqual([]);
      await on.c.call("KV", "Put", { key: b("f/z"), value: b("end") });
      const brief = (e: Msg) => `${e.type} ${e.kv.key}${e.kv.value?.length ? `=${e.kv.value}` : ""}${e.prev_kv ? ` (prev ${e.prev_kv.value})` : ""}`;
      // A put that creates its key has no prev_kv even where the key had a value before the revision (etcd reads none for a create).
      const expected = ["Delete f/a (prev 1)", "Put f/a=2", "Put f/a=2 (prev 2)", "Delete f/a (prev 2)", "Put f/z=end"];
      const seen: string[] = [];
      while (seen.length < expected.length) for (const e of (await watch.next()).events ?? []) seen.push(brief(e));
      expect(seen).toEqual(expected);
      const replay = await historyFrom(on.target, rev, Number(rev) + 2);
      expect((replay as { events: Msg[] }).events.map(brief)).toEqual(expected);
    } finally {
      watch.close();
    }
  });

  test("a nested Txn deleting what an earlier nested Txn put: applied, and each write is an event in op order, live and replayed, prev_kv as before the Txn", async () => {
    const before = await on.c.call("KV", "Put", { key: b("g/a"), value: b("0") });
    const watch = watchStream(on.target.endpoint);
    try {
      watch.send({ create_request: { key: b("g/"), range_end: b("g0"), prev_kv: true } });
      expect((await watch.next()).created).toBe(true);
      const nested = (op: Msg) => ({ request_txn: { success: [op] } });
      const txn = {
        success: [
          nested({ request_put: { key: b("g/b"), value: b("1") } }),
          nested({ request_put: { key: b("g/a"), value: b("1") } }),
          nested({ request_delete_range: { key: b("g/a"), range_end: b("g/c"), prev_kv: true } }),
          { request_put: { key: b("g/c"), value: b("1") } },
        ],
      };
      const r = await on.c.call("KV", "Txn", txn);
      const deleted = r.responses[2].response_txn.responses[0].response_delete_range;
      expect([deleted.deleted, deleted.prev_kvs.map((kv: Msg) => `${kv.key}=${kv.value}`)]).toEqual(["2", ["g/a=1", "g/b=1"]]);
      expect((await on.c.call("KV", "Range", { key: b("g/"), range_end: b("g0") })).kvs.map((kv: Msg) => kv.key.toString())).toEqual(["g/c"]);
      await on.c.call("KV", "Put", { key: b("g/z"), value: b("end") });
      const brief = (e: Msg) => `${e.type} ${e.kv.key}${e.kv.value?.length ? `=${e.kv.value}` : ""}${e.prev_kv ? ` (prev ${e.prev_kv.value})` : ""}`;
      const expected = ["Put g/b=1", "Put g/a=1 (prev 0)", "Delete g/a (prev 0)", "Delete g/b", "Put g/c=1", "Put g/z=end"];
      const live: string[] = [];
      while (live.length < expected.length) for (const e of (await watch.next()).events ?? []) live.push(brief(e));
      expect(live).toEqual(expected);
      const replay = await historyFrom(on.target, String(Number(before.header.revision) + 1), Number(before.header.revision) + 2);
      expect((replay as { events: Msg[] }).events.filter((e) => String(e.kv.key).startsWith("g/")).map(brief)).toEqual(expected);
    } finally {
      watch.close();
    }
  });
});

describe.each(["etcd", "mergekv"] as const)("a put with ignore_value after a from-key delete of its key in one Txn, on %s", (name) => {
  const on = freshTarget(name);

  test("etcd 3.4 passes its pre-check (the key is there before the Txn) and panics applying it; mergekv answers key not found and changes nothing", async () => {
    await on.c.call("KV", "Put", { key: b("h/a"), value: b("1") });
    const txn = { success: [{ request_delete_range: { key: b("h/"), range_end: Buffer.of(0) } }, { request_put: { key: b("h/a"), ignore_value: true } }] };
    if (name === "etcd") {
      await expect(on.c.call("KV", "Txn", txn)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      await expect(on.c.call("KV", "Range", { key: b("h/a") })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE }); // gone
    } else {
      await expect(on.c.call("KV", "Txn", txn)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: "etcdserver: key not found" });
      expect((await on.c.call("KV", "Range", { key: b("h/a") })).kvs.map((kv: Msg) => kv.value.toString())).toEqual(["1"]);
    }
  });
});

/**
 * Auth, differentially: the same random requests as root, two users with
 * key-range roles and an anonymous caller, with roles and permissions
 * granted and revoked as it goes, against etcd and mergekv with auth on.
 * Every answer must be the same (permission errors included), and the
 * keyspace after each request.
 */
describe("etcd and mergekv with auth on answer the same random requests the same way", () => {
  let etcd: Target, mergekv: Target;
  let ce: RawClient, cm: RawClient;
  const tokens = new Map<string, { etcd: string; mergekv: string }>();
  const USERS = ["root", "alice", "bob"];
  const ROLES = ["r-d", "r-e", "r-all"];
  const PERMS: Msg[] = [
    { key: b("d/"), range_end: b("d0") },
    { key: b("d/a") },
    { key: b("d/c"), range_end: b("d/f") },
    { key: b("e/"), range_end: b("e0") },
    { key: b("d/"), range_end: Buffer.of(0) },
  ];

  const asRoot = async (service: "Auth", method: string, req: Msg) => {
    for (const [c, t] of [[ce, "etcd"], [cm, "mergekv"]] as const) {
      const md = new grpc.Metadata();
      const token = tokens.get("root")?.[t];
      if (token) md.set("token", token);
      await c.call(service, method, req, md);
    }
  };

  beforeAll(async () => {
    [etcd, mergekv] = await Promise.all([startTarget("etcd"), startTarget("mergekv")]);
    ce = rawClient(etcd.endpoint);
    cm = rawClient(mergekv.endpoint);
    for (const user of USERS) await asRoot("Auth", "UserAdd", { name: user, password: `${user}-pw` });
    await asRoot("Auth", "RoleAdd", { name: "root" });
    await asRoot("Auth", "UserGrantRole", { user: "root", role: "root" });
    for (const role of ROLES) await asRoot("Auth", "RoleAdd", { name: role });
    await asRoot("Auth", "AuthEnable", {});
    for (const user of USERS) {
      const [e, m] = await Promise.all([ce, cm].map(async (c) => (await c.call("Auth", "Authenticate", { name: user, password: `${user}-pw` })).token as string));
      tokens.set(user, { etcd: e, mergekv: m });
    }
  }, 60_000);

  afterAll(async () => {
    ce?.close();
    cm?.close();
    await Promise.all([etcd?.stop(), mergekv?.stop()]);
  });

  async function answerAs(who: string, call: Call | { service: "Auth"; method: string; req: Msg }): Promise<[unknown, unknown]> {
    const out: unknown[] = [];
    for (const [c, t] of [[ce, "etcd"], [cm, "mergekv"]] as const) {
      const md = new grpc.Metadata();
      const token = tokens.get(who)?.[t];
      if (token) md.set("token", token);
      try {
        out.push(comparable(await c.call(call.service, call.method, call.req, md)));
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (typeof err.code !== "number") throw e;
        out.push({ error: err.code, message: err.details });
      }
    }
    return out as [unknown, unknown];
  }

  test("400 requests as four callers, with permissions changing, answer for answer", async () => {
    const seed = chooseSeed("differential auth etcd/mergekv");
    const rnd = new SeededRandom(seed);
    const model: Model = { rev: 1, compacted: 0, leases: new Set() };
    const next = generator(rnd, model, true);
    let denied = 0, allowed = 0;
    for (let step = 0; step < 400; step++) {
      const r = rnd.below(10);
      let who: string;
      let call: Call | { service: "Auth"; method: string; req: Msg };
      if (r === 0) {
        who = "root";
        const role = rnd.pick(ROLES), perm = rnd.pick(PERMS);
        call = rnd.below(3) > 0
          ? { service: "Auth", method: "RoleGrantPermission", req: { name: role, perm: { permType: rnd.pick(["READ", "WRITE", "READWRITE"]), ...perm } } }
          : { service: "Auth", method: "RoleRevokePermission", req: { role, ...perm } };
      } else if (r === 1) {
        who = "root";
        const user = rnd.pick(["alice", "bob"]), role = rnd.pick(ROLES);
        call = rnd.below(3) > 0 ? { service: "Auth", method: "UserGrantRole", req: { user, role } } : { service: "Auth", method: "UserRevokeRole", req: { name: user, role } };
      } else {
        who = rnd.pick(["root", "alice", "alice", "bob", "bob", "anonymous"]);
        call = next();
        if (call.method === "Compact" || call.service === "Lease") continue; // etcd lets anyone compact; mergekv keeps it for root (auth.test.ts)
      }
      const [fromEtcd, fromMergekv] = await answerAs(who, call);
      if (JSON.stringify(fromEtcd) !== JSON.stringify(fromMergekv)) {
        console.log(`step ${step} of seed ${seed}, as ${who}: ${call.service}.${call.method} ${JSON.stringify(comparable(call.req))}`);
        expect({ step, seed, who, mergekv: fromMergekv }).toEqual({ step, seed, who, mergekv: fromEtcd });
      }
      const [stateEtcd, stateMergekv] = await answerAs("root", { service: "KV", method: "Range", req: { key: Buffer.of(0), range_end: Buffer.of(0) } });
      if (JSON.stringify(stateEtcd) !== JSON.stringify(stateMergekv)) {
        console.log(`after step ${step} of seed ${seed}, as ${who}: ${call.service}.${call.method} ${JSON.stringify(comparable(call.req))}`);
        expect({ after: step, seed, state: stateMergekv }).toEqual({ after: step, seed, state: stateEtcd });
      }
      const a = fromEtcd as Msg;
      if (a.error === 7) denied++;
      else if (a.error === undefined && call.service === "KV") allowed++;
      model.rev = Math.max(model.rev, Number(a.header?.revision ?? model.rev));
    }
    // Both outcomes came up many times.
    expect(denied).toBeGreaterThan(20);
    expect(allowed).toBeGreaterThan(20);
  }, 120_000);
});

describe.each(["etcd", "mergekv"] as const)("permission checks where etcd 3.4 is looser, on %s", (name) => {
  let target: Target;
  let c: RawClient;
  const as = (token: string | null) => {
    const md = new grpc.Metadata();
    if (token) md.set("token", token);
    return md;
  };
  let alice = "";
  beforeAll(async () => {
    target = await startTarget(name);
    c = rawClient(target.endpoint);
    for (const [user, role] of [["root", "root"], ["alice", "app"]]) {
      await c.call("Auth", "UserAdd", { name: user, password: "pw" });
      await c.call("Auth", "RoleAdd", { name: role });
      await c.call("Auth", "UserGrantRole", { user, role });
    }
    await c.call("Auth", "RoleGrantPermission", { name: "app", perm: { permType: "WRITE", key: b("w/"), range_end: b("w0") } });
    await c.call("Auth", "AuthEnable", {});
    alice = (await c.call("Auth", "Authenticate", { name: "alice", password: "pw" })).token;
  }, 60_000);
  afterAll(async () => { c?.close(); await target?.stop(); });

  test("a nested Txn's ops and an anonymous empty Txn: etcd 3.4 lets them through, mergekv checks them; a Txn put's prev_kv needs read on both", async () => {
    const denied = { code: 7, details: "etcdserver: permission denied" };
    const nested = { success: [{ request_txn: { success: [{ request_range: { key: b("secret") } }] } }] };
    const prevKv = { success: [{ request_put: { key: b("w/a"), value: b("1"), prev_kv: true } }] };
    await expect(c.call("KV", "Txn", prevKv, as(alice))).rejects.toMatchObject(denied);
    if (name === "etcd") {
      expect((await c.call("KV", "Txn", nested, as(alice))).succeeded).toBe(true); // reads "secret" without read permission
      expect((await c.call("KV", "Txn", {}, as(null))).succeeded).toBe(true);
    } else {
      await expect(c.call("KV", "Txn", nested, as(alice))).rejects.toMatchObject(denied);
      await expect(c.call("KV", "Txn", {}, as(null))).rejects.toMatchObject({ code: 3, details: "etcdserver: user name is empty" });
    }
  });
});
