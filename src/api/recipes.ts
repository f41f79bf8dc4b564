/**
 * etcd's concurrency recipes, Mutex and Election (clientv3/concurrency in
 * etcd 3.4), run inside the server for the v3lock and v3election services,
 * as etcd runs them over an in-process client. Every step is a request a
 * client could make, checked against the caller's permissions: a Txn that
 * puts the caller's key under `name/` if absent and reads the oldest one,
 * then, while an older key exists, a watch until it is deleted. So a lock or
 * a leadership taken here and one taken by a client's own recipe exclude
 * each other, as on etcd.
 *
 * A key is `name/` + the lease id in hex; the lease holds it (a crashed
 * holder's key goes with its lease). A Lock or Campaign with lease 0 gets a
 * new lease of SESSION_TTL_SECONDS, as etcd's session does, not kept alive.
 */
import { MergekvError } from "../errors";
import { Engine } from "../server";
import { KeyValue, MvccEvent } from "../backend/mvcc";
import { WatchHub, Watcher } from "../backend/watch-hub";
import { KeyString, keyToBytes, keyToString } from "../persist/encoding";
import { RangeRequest, RangeResult, RequestOp, TxnRequest, TxnResult, putOf, rangeOf } from "../frontend/requests";
import { rangeNeeds, txnNeeds } from "./permissions";

/** concurrency.NewSession's default TTL: the lease a Lock or Campaign without one is given. */
export const SESSION_TTL_SECONDS = 60;

/** A leadership, as Campaign hands it out and Proclaim and Resign take it back. */
export interface LeaderKey {
  name: KeyString;
  key: KeyString;
  /** The key's create revision. */
  rev: number;
  lease: number;
}

const EMPTY = new Uint8Array(0);

/** The end of a prefix's range (etcd's GetPrefixRangeEnd): the last byte below 0xff raised by one, what follows dropped. */
export function prefixEnd(prefix: KeyString): KeyString {
  const b = keyToBytes(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) return keyToString(Buffer.concat([b.subarray(0, i), Buffer.of(b[i] + 1)]));
  }
  return "\0" as KeyString; // all 0xff: to the end of the keyspace
}

/** clientv3's WithFirstCreate / WithLastCreate on a prefix: the oldest or newest key by create revision. */
function byCreate(prefix: KeyString, order: "ASCEND" | "DESCEND", maxCreateRevision = 0): RangeRequest {
  return rangeOf(prefix, { rangeEnd: prefixEnd(prefix), sortTarget: "CREATE", sortOrder: order, limit: 1, maxCreateRevision });
}

const createdIs = (key: KeyString, rev: number) => ({ key, rangeEnd: "" as KeyString, target: "CREATE" as const, result: "EQUAL" as const, number: rev, value: EMPTY });
const put = (key: KeyString, value: Uint8Array, lease: number): RequestOp => ({ put: putOf(key, value, { lease }) });

export class Recipes {
  constructor(private readonly engine: Engine, private readonly watches: WatchHub) {}

  /** The key a lease holds under `name/`. */
  static keyOf(name: KeyString, lease: number): KeyString {
    return `${name}/${lease.toString(16)}` as KeyString;
  }

  /** Mutex.Lock: resolves once `name` is ours (the header's revision and our key); the key is deleted again if the wait fails. */
  async lock(name: KeyString, lease: number, user: string | undefined, signal: AbortSignal): Promise<{ revision: number; key: KeyString }> {
    const pfx = `${name}/` as KeyString;
    const id = await this.session(lease);
    const key = Recipes.keyOf(name, id);
    const r = await this.txn({ compare: [createdIs(key, 0)], success: [put(key, EMPTY, id), { range: byCreate(pfx, "ASCEND") }], failure: [{ range: rangeOf(key) }, { range: byCreate(pfx, "ASCEND") }] }, user);
    const myRev = r.result.succeeded ? r.revision : rangeResult(r.result, 0).kvs[0].create;
    const owner = rangeResult(r.result, 1).kvs;
    if (owner.length === 0 || owner[0].create === myRev) return { revision: r.revision, key };
    try {
      return { revision: await this.waitDeletes(pfx, myRev - 1, user, signal), key };
    } catch (e) {
      await this.deleteKey(key, user).catch(() => undefined); // Mutex.Unlock: leave no waiter behind
      throw e;
    }
  }

  /** Mutex.Unlock (the v3lock service's): deletes the key. */
  async deleteKey(key: KeyString, user: string | undefined): Promise<number> {
    return (await this.txn({ compare: [], success: [{ deleteRange: { key, rangeEnd: "" as KeyString, prevKv: false } }], failure: [] }, user)).revision;
  }

  /**
   * Election.Campaign: resolves once we lead `name` (our value proclaimed if
   * the key was there with another), with the campaign Txn's revision.
   */
  async campaign(name: KeyString, lease: number, value: Uint8Array, user: string | undefined, signal: AbortSignal): Promise<{ revision: number; leader: LeaderKey }> {
    const pfx = `${name}/` as KeyString;
    const id = await this.session(lease);
    const key = Recipes.keyOf(name, id);
    const r = await this.txn({ compare: [createdIs(key, 0)], success: [put(key, value, id)], failure: [{ range: rangeOf(key) }] }, user);
    const leader: LeaderKey = { name, key, rev: r.revision, lease: id };
    if (!r.result.succeeded) {
      const kv = rangeResult(r.result, 0).kvs[0];
      leader.rev = kv.create;
      if (Buffer.compare(Buffer.from(kv.value), Buffer.from(value)) !== 0) {
        try {
          await this.proclaim(leader, value, user);
        } catch (e) {
          await this.resign(leader, user).catch(() => undefined);
          throw e;
        }
      }
    }
    try {
      await this.waitDeletes(pfx, leader.rev - 1, user, signal);
    } catch (e) {
      if (signal.aborted) await this.resign(leader, user).catch(() => undefined); // the campaigner went away
      throw e;
    }
    return { revision: r.revision, leader };
  }

  /** Election.Proclaim: a new value, if we still lead (else "election: not leader"). */
  async proclaim(leader: LeaderKey, value: Uint8Array, user: string | undefined): Promise<number> {
    const r = await this.txn({ compare: [createdIs(leader.key, leader.rev)], success: [put(leader.key, value, leader.lease)], failure: [] }, user);
    if (!r.result.succeeded) throw new MergekvError("ElectionNotLeader");
    return r.revision;
  }

  /** Election.Resign: deletes the key if it is still this leadership's; the revision either way. */
  async resign(leader: LeaderKey, user: string | undefined): Promise<number> {
    const del: RequestOp = { deleteRange: { key: leader.key, rangeEnd: "" as KeyString, prevKv: false } };
    return (await this.txn({ compare: [createdIs(leader.key, leader.rev)], success: [del], failure: [] }, user)).revision;
  }

  /** Election.Leader: the oldest key under `name/` (else "election: no leader"). */
  async leader(name: KeyString, user: string | undefined): Promise<{ revision: number; kv: KeyValue }> {
    const r = await this.range(byCreate(`${name}/` as KeyString, "ASCEND"), user);
    if (r.result.kvs.length === 0) throw new MergekvError("ElectionNoLeader");
    return { revision: r.revision, kv: r.result.kvs[0] };
  }

  /**
   * Election.Observe: `emit` gets the leader's key-value now (or at its
   * first put), then every new value it proclaims; after its key is deleted,
   * the next leader's. Runs until `signal` aborts. `emit` answers false when
   * the caller's stream is full: nothing more is produced until `drained`
   * resolves, and what came meanwhile is read back from history.
   */
  async observe(name: KeyString, user: string | undefined, signal: AbortSignal, emit: (revision: number, kv: KeyValue) => boolean, drained: () => Promise<void>): Promise<void> {
    const pfx = `${name}/` as KeyString;
    while (!signal.aborted) {
      const r = await this.range(byCreate(pfx, "ASCEND"), user);
      let kv = r.result.kvs[0];
      let revision = r.revision;
      if (!kv) {
        // No leader yet: the first put under the prefix from the read on (a delete would only spin).
        const e = await this.watch(pfx, prefixEnd(pfx), r.revision, signal, (ev) => (ev.type === "put" ? "stop" : "more"));
        kv = e.kv;
        revision = kv.mod;
      }
      if (!emit(revision, kv)) await drained();
      await this.watch(kv.key, "" as KeyString, revision + 1, signal, (ev, rev) => {
        if (ev.type === "delete") return "stop";
        return emit(rev, ev.kv) ? "more" : "full";
      }, drained);
    }
  }

  /** The lease for a Lock or Campaign: the one given, or a new one (etcd's session with no lease). */
  private async session(lease: number): Promise<number> {
    if (lease !== 0) return lease;
    return (await this.engine.backend.grantLease(0, SESSION_TTL_SECONDS)).id;
  }

  /** Waits until no key under `pfx` created at or below `maxCreateRev` is left; the last read's revision. */
  private async waitDeletes(pfx: KeyString, maxCreateRev: number, user: string | undefined, signal: AbortSignal): Promise<number> {
    for (;;) {
      const r = await this.range(byCreate(pfx, "DESCEND", maxCreateRev), user);
      if (r.result.kvs.length === 0) return r.revision;
      await this.watch(r.result.kvs[0].key, "" as KeyString, r.revision, signal, (e) => (e.type === "delete" ? "stop" : "more"));
    }
  }

  /**
   * Watches [key, rangeEnd) from `startRevision` until `onEvent` says "stop"
   * at an event; resolves with that event. "full": the consumer is backed
   * up, so the watch leaves the live path (the hub's slow-consumer rule) and
   * catches up from history once `drained` resolves. Rejects if the watch is
   * canceled (compacted history) or `signal` aborts.
   */
  private watch(
    key: KeyString, rangeEnd: KeyString, startRevision: number, signal: AbortSignal,
    onEvent: (e: MvccEvent, revision: number) => "stop" | "more" | "full", drained?: () => Promise<void>,
  ): Promise<MvccEvent> {
    return new Promise((resolve, reject) => {
      let w: Watcher | null = null;
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        if (w) this.watches.remove(w);
        signal.removeEventListener("abort", onAbort);
        f();
      };
      // The caller went away (nobody reads this) or the server is stopping (UNAVAILABLE, as etcd's "server stopped").
      const onAbort = () => finish(() => reject(new MergekvError("Unavailable")));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort);
      // History is replayed inside `add`, so the sink may settle before `add` returns.
      w = this.watches.add({ key, rangeEnd, startRevision, prevKv: false, noPut: false, noDelete: false }, {
        send: (events, revision) => {
          let taking = true;
          for (const e of events) {
            if (settled) break;
            const next = onEvent(e, revision);
            if (next === "stop") finish(() => resolve(e));
            else if (next === "full") taking = false;
          }
          if (!taking && !settled && drained) void drained().then(() => { if (!settled && w) this.watches.resume(w); });
          return taking || !drained;
        },
        cancel: (reason, compactRevision) => finish(() => reject(compactRevision > 0 ? new MergekvError("Compacted") : new MergekvError("LostDeleteWatch", `lost watcher waiting for delete: ${reason}`))),
      });
      if (settled) this.watches.remove(w);
    });
  }

  private async txn(t: TxnRequest, user: string | undefined): Promise<{ revision: number; result: TxnResult }> {
    this.engine.auth.authorize(user, txnNeeds(t));
    const r = await this.engine.pool.execute({ kind: "txn", req: t });
    return { revision: r.revision, result: r.result as TxnResult };
  }

  private async range(q: RangeRequest, user: string | undefined): Promise<{ revision: number; result: RangeResult }> {
    this.engine.auth.authorize(user, rangeNeeds(q));
    const r = await this.engine.pool.execute({ kind: "range", req: q });
    return { revision: r.revision, result: r.result as RangeResult };
  }
}

function rangeResult(r: TxnResult, i: number): RangeResult {
  const op = r.responses[i];
  if (!op || !("range" in op)) throw new MergekvError("Internal", `recipe Txn: response ${i} is not a range`);
  return op.range;
}
