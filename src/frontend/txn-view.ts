/**
 * A write request's view of the store: the frontend's MVCC store overlaid
 * with the request's own writes so far (etcd runs a Txn's ops in order, each
 * seeing the earlier ones). The writes become the request's change.
 */
import { KeyValue, MvccStore, inRange } from "../backend/mvcc";
import { KeyString } from "../persist/encoding";
import { Write } from "../persist/records";

export class TxnView {
  /** The request's net write per key: what its reads see, and what its Automerge change makes. */
  readonly writes = new Map<KeyString, Write>();
  /**
   * Every write in the order the request made it, a key again when a later
   * op wrote it again (a nested Txn deleting what an earlier one put: etcd
   * sends both events): the request's writes as they are recorded.
   */
  readonly ordered: Write[] = [];
  /** Keys whose pending put makes them anew: absent before it (deleted by an earlier op, or never in the store). */
  private readonly creates = new Set<KeyString>();
  /** Kvs shown to this request with a stand-in revision, and whether they are its creations. */
  private readonly unassigned: { kv: KeyValue; created: boolean }[] = [];

  /** `leaseExists`: whether a Put may name this lease. */
  constructor(readonly mvcc: MvccStore, readonly leaseExists: (id: number) => boolean = () => false) {}

  get(key: KeyString): KeyValue | undefined {
    const w = this.writes.get(key);
    if (!w) return this.mvcc.get(key);
    if (w.value === null) return undefined;
    return this.pendingKv(key, w);
  }

  /** Live kvs in [key, rangeEnd) now (rev 0), or at an older revision (store only). */
  range(key: KeyString, rangeEnd: KeyString, rev = 0): KeyValue[] {
    const base = [...this.mvcc.range(key, rangeEnd, rev)];
    if (rev !== 0 || this.writes.size === 0) return base;
    const merged = new Map<string, KeyValue>(base.map((kv) => [kv.key, kv]));
    for (const [k, w] of this.writes) {
      if (!inRange(k, key, rangeEnd)) continue;
      if (w.value === null) merged.delete(k);
      else merged.set(k, this.pendingKv(k, w));
    }
    return [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  put(key: KeyString, value: Uint8Array, lease: number): void {
    if (this.get(key)) this.creates.delete(key);
    else this.creates.add(key);
    this.write({ key, value, lease });
  }

  delete(key: KeyString): void {
    this.write({ key, value: null, lease: 0 });
  }

  private write(w: Write): void {
    this.writes.set(w.key, w);
    this.ordered.push(w);
  }

  /** Whether no result shown so far holds a stand-in revision (so `assign` has nothing to fill in). */
  get settled(): boolean {
    return this.unassigned.length === 0;
  }

  /** Fills in the revision of results that showed this request's own writes. */
  assign(rev: number): void {
    for (const { kv, created } of this.unassigned) {
      kv.mod = rev;
      if (created) kv.create = rev;
    }
  }

  /**
   * A kv of this request's own write. Until the backend assigns the
   * request's revision it stands in as the next revision: the real one is
   * above every revision in the store too, so sorting and filtering on
   * create or mod revision inside the Txn order it after every stored key,
   * as etcd does (a lock's "oldest waiter" read right after its own put).
   */
  private pendingKv(key: KeyString, w: Write): KeyValue {
    const before = this.creates.has(key) ? undefined : this.mvcc.get(key);
    const next = this.mvcc.rev + 1;
    const kv: KeyValue = {
      key,
      create: before ? before.create : next,
      mod: next,
      version: (before?.version ?? 0) + 1,
      value: w.value!,
      lease: w.lease,
    };
    this.unassigned.push({ kv, created: !before });
    return kv;
  }
}
