/**
 * A frontend's request execution: reads from its own replica; writes applied
 * to its Automerge documents at once, as one change per request, shipped to
 * the backend as one envelope. The result is returned when the backend's
 * revision for it comes back (durable by then).
 *
 * Invariants:
 *  1. A request that reads state it may write (Txn compares, prev_kv,
 *     ignore_value, DeleteRange) first waits until this frontend's own
 *     in-flight writes to those keys have come back: no lost update on a key
 *     routed to this frontend.
 *  2. Evaluation and the local Automerge write happen in one synchronous step.
 *  3. Sequence numbers rise by one per envelope under an actor made fresh for
 *     each process: (actor, seq) is never reused.
 *  4. A write to a bucket this frontend does not own happens on a document
 *     borrowed from the backend just before, holding every change so far
 *     (loaded from the bytes lent, or kept from an earlier loan and given
 *     the changes since).
 *  5. Borrowing yields the thread every BORROW_SLICE_MS: a write spanning
 *     thousands of buckets loads their documents over many turns, and
 *     requests that arrive meanwhile run between them.
 */
import { Replica, AppliedEntry } from "../backend/replica";
import { bucketOf } from "../backend/buckets";
import { Loan } from "../backend/stored-docs";
import { Envelope, nextTurn } from "../backend/backend";
import { LeaseChange } from "../backend/leases";
import { MvccStore, inRange } from "../backend/mvcc";
import { KeyString } from "../persist/encoding";
import { validateRequest } from "./validate";
import { TxnView } from "./txn-view";
import { runRequest } from "./operations";
import { MergekvError } from "../errors";
import { KvRequest, KvResult, RequestOp, TxnRequest, TXN_OPS_MAX } from "./requests";

export interface Executed {
  revision: number;
  result: KvResult;
  /** The result already went out with the write's change (an EarlyReply): no response is due. */
  replied?: boolean;
}

/**
 * A write's result sent with its change, when the result does not depend on
 * the revision the backend will assign (it shows none of the write's own
 * kvs): the main thread answers the request as soon as the change is durable,
 * without waiting for this frontend to hear the revision back.
 */
export interface EarlyReply {
  /** The envelope's seq (with the frontend's actor, the change's key). */
  seq: number;
  /** The pool's request id. */
  id: number;
  result: KvResult;
}

/** Write envelopes a frontend may have in flight: beyond it new writes wait (backpressure). */
export const INFLIGHT_ENVELOPES_MAX = 8_192;
/** Times a write re-gathers borrowed documents when its key set moved meanwhile, before giving up. */
export const BORROW_ATTEMPTS_MAX = 8;
/**
 * Longest a borrow loads documents before letting other requests run. A
 * document loads in about 0.3 ms, so deleting a prefix of 9,000 keys borrowed
 * about 3,000 of them and held every other write on its frontend for a
 * second (REDESIGN.md, "Bucket ownership").
 */
export const BORROW_SLICE_MS = 4;

/** Borrows bucket documents from the backend, each asked with the version this frontend keeps (-1: none). */
export type BucketFetcher = (buckets: [number, number][]) => Promise<Loan[]>;

export class Executor {
  private seq = 0;
  private readonly pendingKeys = new Map<string, number>();
  private readonly pending = new Map<number, { keys: KeyString[]; replied: boolean; finish: (rev: number) => void }>();
  /** Pending envelopes whose result went without an EarlyReply: their requests are answered only when the revision comes back. */
  private unreplied = 0;
  private wakers: (() => void)[] = [];
  /** Per bucket we do not own: the seq of our latest envelope that wrote it (bounded by BUCKET_COUNT). */
  private readonly foreignSeq = new Map<number, number>();
  /** Leases that exist, as the backend announced them. */
  private readonly leases: Set<number>;

  /** `txnOpsMax`: the server's --max-txn-ops. */
  constructor(readonly replica: Replica, private readonly send: (e: Envelope, reply?: EarlyReply) => void, private readonly fetch: BucketFetcher, leases: Iterable<number> = [], private readonly txnOpsMax = TXN_OPS_MAX) {
    this.leases = new Set(leases);
  }

  /** Grants and revocations, in the order the backend made them. */
  onLeases(changes: readonly LeaseChange[]): void {
    for (const { id, exists } of changes) {
      if (exists) this.leases.add(id);
      else this.leases.delete(id);
    }
  }

  private view(): TxnView {
    return new TxnView(this.mvcc, (id) => this.leases.has(id));
  }

  private get mvcc(): MvccStore {
    return this.replica.mvcc;
  }

  /**
   * Executes one request; `minRev` is the revision a linearizable read must
   * see. `replyTo`: the request's id, to send a write's result with its
   * change where it can (see EarlyReply).
   */
  async execute(r: KvRequest, minRev: number, replyTo?: number): Promise<Executed> {
    validateRequest(r, this.txnOpsMax);
    if (r.kind === "range") {
      if (!r.req.serializable) while (this.mvcc.rev < minRev) await this.nextApplied();
      return { revision: this.mvcc.rev, result: runRequest(this.view(), r) };
    }
    if (r.kind === "hashKV") {
      while (this.mvcc.rev < minRev) await this.nextApplied();
      return { revision: this.mvcc.rev, result: runRequest(this.view(), r) };
    }
    const reads = readSet(r);
    const borrowed: number[] = [];
    try {
      for (let attempt = 0; attempt < BORROW_ATTEMPTS_MAX; attempt++) {
        while (this.pending.size >= INFLIGHT_ENVELOPES_MAX || (reads && this.anyPending(reads))) await this.nextApplied();
        const missing = this.unheld(candidateBuckets(this.mvcc, r));
        if (missing.length > 0) {
          await this.borrow(missing, borrowed);
          continue; // state may have moved while we waited: check again
        }
        const view = this.view();
        const result = runRequest(view, r);
        if (view.writes.size === 0) return { revision: this.mvcc.rev, result };
        if (this.unheld([...view.writes.keys()].map(bucketOf)).length === 0) return this.ship(view, result, replyTo);
      }
      throw new MergekvError("Unavailable", "mergekv: the keys of this write kept moving; try again");
    } finally {
      for (const b of borrowed) this.replica.buckets.release(b);
    }
  }

  /**
   * Borrows documents from the backend. The fetch is ordered after every
   * envelope sent so far, so its bytes hold our changes up to `asOf`; bytes
   * that miss a later change of ours to that bucket are stale and not used.
   */
  private async borrow(buckets: number[], borrowed: number[]): Promise<void> {
    const asOf = this.seq;
    const set = this.replica.buckets;
    const loans = await this.fetch(buckets.map((b) => [b, set.known(b)]));
    let sliceStart = performance.now();
    for (const loan of loans) {
      if (performance.now() - sliceStart >= BORROW_SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
      // Checked after the yield: a request in between may have written b since the fetch. Saved
      // bytes lent before that write lack it; changes since a kept version go onto the kept
      // document, which has it.
      if (!set.holds(loan.bucket) && "bytes" in loan && (this.foreignSeq.get(loan.bucket) ?? 0) > asOf) continue;
      if (set.borrow(loan)) borrowed.push(loan.bucket);
    }
  }

  private unheld(buckets: Iterable<number>): number[] {
    const out = new Set<number>();
    for (const b of buckets) if (!this.replica.buckets.holds(b)) out.add(b);
    return [...out];
  }

  private ship(view: TxnView, result: KvResult, replyTo: number | undefined): Promise<Executed> {
    const buckets = this.replica.buckets;
    for (const w of view.writes.values()) {
      if (w.value === null) buckets.delete(w.key);
      else buckets.put(w.key, w.value);
    }
    const changes = buckets.commit();
    const seq = ++this.seq;
    for (const c of changes) if (!buckets.owns(c.bucket)) this.foreignSeq.set(c.bucket, seq);
    const keys = [...view.writes.keys()];
    for (const k of keys) this.pendingKeys.set(k, (this.pendingKeys.get(k) ?? 0) + 1);
    const reply = replyTo !== undefined && view.settled ? { seq, id: replyTo, result } : undefined;
    const done = new Promise<Executed>((resolve) => {
      if (!reply) this.unreplied++;
      this.pending.set(seq, {
        keys,
        replied: reply !== undefined,
        finish: (rev) => {
          view.assign(rev);
          resolve({ revision: rev, result, replied: reply !== undefined });
        },
      });
    });
    this.send({ actor: this.replica.actor, seq, changes, writes: view.ordered }, reply);
    return done;
  }

  /** Applies the backend's entries; completes this frontend's own requests among them. */
  onApplied(entries: AppliedEntry[]): void {
    this.replica.apply(entries);
    for (const e of entries) {
      if (e.actor !== this.replica.actor) continue;
      const p = this.pending.get(e.seq!);
      if (!p) continue;
      this.pending.delete(e.seq!);
      if (!p.replied) this.unreplied--;
      for (const k of p.keys) {
        const n = this.pendingKeys.get(k)! - 1;
        if (n === 0) this.pendingKeys.delete(k);
        else this.pendingKeys.set(k, n);
      }
      p.finish(e.rev);
    }
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }

  onCompact(rev: number): void {
    if (rev <= this.mvcc.compactRev) return;
    this.mvcc.setCompactRev(rev);
    this.mvcc.trimSoon();
  }

  private nextApplied(): Promise<void> {
    return new Promise((r) => this.wakers.push(r));
  }

  private anyPending(reads: (k: string) => boolean): boolean {
    for (const k of this.pendingKeys.keys()) if (reads(k)) return true;
    return false;
  }

  get inflight(): number {
    return this.pending.size;
  }

  /**
   * Whether a request here waits for applied entries: to learn its write's
   * revision, or for an earlier write of ours to come back (invariant 1,
   * the in-flight bound). While none does, the entries can wait for the next
   * requests message.
   */
  get awaitingApplied(): boolean {
    return this.unreplied > 0 || this.wakers.length > 0;
  }
}

/** Buckets a write request may write, judged on the current state (both Txn branches). */
function candidateBuckets(mvcc: MvccStore, r: KvRequest): number[] {
  const out: number[] = [];
  const addOp = (op: RequestOp) => {
    if ("put" in op) out.push(bucketOf(op.put.key));
    else if ("deleteRange" in op) for (const k of mvcc.liveKeys(op.deleteRange.key, op.deleteRange.rangeEnd)) out.push(bucketOf(k));
    else if ("txn" in op) {
      for (const o of op.txn.success) addOp(o);
      for (const o of op.txn.failure) addOp(o);
    }
  };
  if (r.kind === "put") addOp({ put: r.req });
  else if (r.kind === "deleteRange") addOp({ deleteRange: r.req });
  else if (r.kind === "txn") addOp({ txn: r.req });
  else if (r.kind === "revokeKeys") for (const k of r.req.keys) out.push(bucketOf(k));
  return out;
}

/** Keys whose current state a write request reads (null: it reads none). */
function readSet(r: KvRequest): ((k: string) => boolean) | null {
  const ranges: [string, string][] = [];
  const addOp = (op: RequestOp) => {
    if ("put" in op) {
      if (op.put.prevKv || op.put.ignoreValue || op.put.ignoreLease) ranges.push([op.put.key, ""]);
    } else if ("deleteRange" in op) ranges.push([op.deleteRange.key, op.deleteRange.rangeEnd]);
    else if ("range" in op) ranges.push([op.range.key, op.range.rangeEnd]);
    else addTxn(op.txn);
  };
  const addTxn = (t: TxnRequest) => {
    for (const c of t.compare) ranges.push([c.key, c.rangeEnd]);
    for (const op of t.success) addOp(op);
    for (const op of t.failure) addOp(op);
  };
  if (r.kind === "put") addOp({ put: r.req });
  else if (r.kind === "deleteRange") addOp({ deleteRange: r.req });
  else if (r.kind === "txn") addTxn(r.req);
  else if (r.kind === "revokeKeys") {
    const keys = new Set<string>(r.req.keys);
    return (k) => keys.has(k);
  }
  if (ranges.length === 0) return null;
  return (k) => ranges.some(([key, end]) => inRange(k, key, end));
}
