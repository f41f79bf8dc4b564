/**
 * The backend: one per server. It receives every change, gives each write
 * request the server's next revision, applies it to its own replica, makes it
 * durable through the change log's group commit, and only then fans it out
 * to the frontends (whose acknowledgements drive internal replication).
 *
 * Invariants:
 *  1. Revisions are assigned in arrival order, +1 per write request, and never go down.
 *  2. Nothing reaches a frontend before it is durable.
 *  3. The MVCC store equals the Automerge state: a CRDT merge that resolves a key
 *     differently from the last write gets its own revision (a merge entry).
 *  4. A snapshot deletes only records whose revision it covers.
 */
import { randomBytes } from "node:crypto";
import { Replica, AppliedEntry, Bootstrap } from "./replica";
import { MvccEvent } from "./mvcc";
import { LeaseChange, LeaseTable } from "./leases";
import { LeaseKeeper } from "./lease-keeper";
import { Reconciler } from "./reconciler";
import { InternalReplication } from "./internal-replication";
import { Loan } from "./stored-docs";
import { applyBatch, snapshots } from "../metrics";
import { BUCKET_COUNT, bucketOf } from "./buckets";
import { ChangeLog, Meta } from "../persist/changelog";
import { ActorId, KeyString, changeKey, mergeKey } from "../persist/encoding";
import { BucketChange, Write, ChangeRecord } from "../persist/records";
import { MergekvError, assert } from "../errors";
import { Store } from "../persist/store";

/** Envelopes applied in one turn at most: bounds a turn's latency under a burst. */
export const APPLY_BATCH_MAX = 2_000;
/** Buckets saved per event-loop turn during a snapshot: writes keep flowing in between. */
export const SNAPSHOT_BUCKETS_PER_TURN = 32;
/** Key histories encoded per turn during a snapshot. */
export const SNAPSHOT_KEYS_PER_TURN = 5_000;
export const DEFAULT_SNAPSHOT_COUNT = 100_000;

/** What a frontend sends: one write request's changes, under its actor and sequence number. */
export interface Envelope {
  actor: ActorId;
  seq: number;
  changes: BucketChange[];
  writes: Write[];
}

export type BackendMessage =
  | { type: "applied"; entries: AppliedEntry[] }
  | { type: "compact"; rev: number }
  | { type: "leases"; changes: LeaseChange[] };

export { LEASE_CHECK_INTERVAL_MS } from "./lease-keeper";

export interface BackendOptions {
  /** Frontends that must have applied a write before it returns (1..frontends). */
  internalReplication: number;
  frontends: number;
  /** Take a snapshot after this many change records. */
  snapshotCount: number;
  /** Treat unreadable records by setting them aside instead of refusing to start. */
  repair?: boolean;
  /** Fan-out to the frontends (the pool posts to the workers). */
  broadcast?: (m: BackendMessage) => void;
  /** Revoke leases whose TTL ran out, once startLeaseExpiry is called (off for offline tools). Default on. */
  expireLeases?: boolean;
  /**
   * Deletes a revoked lease's keys that are still attached to it, as one write
   * request executed by a frontend (which holds the keys' documents); resolves
   * with its revision. Unset (offline tools, tests without frontends): the
   * backend authors the deletion itself, loading each key's document.
   */
  revokeKeys?: (keys: KeyString[], lease: number) => Promise<number>;
  /** Durable events, in revision order, up to `rev` (watches). */
  onEvents?: (events: MvccEvent[], rev: number) => void;
  log?: (line: string) => void;
}

export interface SnapshotReport {
  snapshotRev: number;
  records: number;
  buckets: number;
  keys: number;
  ms: number;
}

export class Backend {
  readonly replica: Replica;
  readonly meta: Meta;
  private bootstrapData: Bootstrap | null;
  private incoming: Envelope[] = [];
  private applyScheduled = false;
  private durableRev: number;
  /** How many frontends must have applied a write before it is answered, and which have. */
  readonly replication: InternalReplication;
  /** Records since the last snapshot: (Level key, revision). */
  private uncovered: { key: Buffer; rev: number }[] = [];
  private dirtyBuckets = new Set<number>();
  private readonly reconciler: Reconciler;
  private snapshotRunning: Promise<SnapshotReport> | null = null;
  private closed = false;
  readonly leases = new LeaseTable();
  private readonly leaseKeeper: LeaseKeeper;
  /** Envelopes the backend authors itself (lease deletions), by seq: resolved with their revision. */
  private readonly authored = new Map<number, (rev: number) => void>();
  private authoredSeq = 0;

  private constructor(readonly log: ChangeLog, meta: Meta, bootstrap: Bootstrap, readonly opts: BackendOptions) {
    this.meta = meta;
    this.replica = new Replica(randomBytes(16).toString("hex") as ActorId, { trackDirty: true, resident: false, byRevision: true });
    this.replica.bootstrap(bootstrap);
    this.reconciler = new Reconciler(this.replica);
    this.bootstrapData = bootstrap;
    this.replica.mvcc.takeDirty();
    if (meta.rev > this.replica.mvcc.rev) this.replica.mvcc.rev = meta.rev; // revisions never go down
    this.durableRev = this.replica.rev;
    this.replication = new InternalReplication(opts.frontends, opts.internalReplication, this.durableRev);
    this.leaseKeeper = new LeaseKeeper(this, this.leases, log, opts);
  }

  /** Recovers from the store: snapshot, then every record after it. */
  static async open(store: Store, sync: boolean, opts: BackendOptions): Promise<Backend> {
    assert(opts.internalReplication >= 1 && opts.internalReplication <= opts.frontends, "1 <= internal replication <= frontends");
    const log = new ChangeLog(store, sync);
    const rec = await log.recover(!!opts.repair, (what, n) => opts.log?.(`recovery: read ${n} ${what}`));
    for (const q of rec.quarantined) opts.log?.(`repair: set aside ${q}`);
    if (rec.meta.bucketCount === 0) await log.writeBucketCount(BUCKET_COUNT);
    else if (rec.meta.bucketCount !== BUCKET_COUNT) {
      throw new MergekvError("Corrupt", `data directory uses ${rec.meta.bucketCount} buckets; this build uses ${BUCKET_COUNT}`);
    }
    const bootstrap: Bootstrap = {
      rev: rec.meta.rev,
      compactRev: rec.meta.compactRev,
      buckets: rec.buckets,
      histories: rec.histories,
      entries: rec.records.map((r) => ({ rev: r.record.rev, actor: r.actor, seq: r.seq, changes: r.record.changes, writes: r.record.writes })),
      leases: rec.leases.map(([id]) => id),
    };
    const backend = new Backend(log, rec.meta, bootstrap, opts);
    backend.uncovered = rec.records.map((r) => ({ key: r.key, rev: r.record.rev }));
    for (const r of rec.records) for (const c of r.record.changes) backend.dirtyBuckets.add(c.bucket);
    for (const r of rec.records) for (const w of r.record.writes) backend.dirtyKeys.add(w.key);
    backend.leaseKeeper.restore(rec.leases);
    return backend;
  }

  /** LeaseGrant: durable when it resolves; id 0 lets the server choose. */
  grantLease(requestedId: number, ttlSeconds: number): Promise<{ id: number; ttlSeconds: number }> {
    return this.leaseKeeper.grant(requestedId, ttlSeconds);
  }

  /** LeaseRevoke: the lease's keys are deleted at one revision, which is returned. */
  revokeLease(id: number): Promise<number> {
    return this.leaseKeeper.revoke(id);
  }

  /** Starts lease expiry, every lease with its full TTL from now; call once, when about to serve. */
  startLeaseExpiry(): void {
    this.leaseKeeper.start();
  }

  /** Applies everything submitted so far, now (a revoke is ordered after writes that arrived first). */
  applyPending(): void {
    while (this.incoming.length > 0) this.applyIncoming();
  }

  /**
   * Deletes keys with a change the backend authors under its own actor, as one
   * write request; resolves with its revision once durable (the current one
   * if none of the keys is live).
   */
  deleteAuthored(keys: string[]): Promise<number> {
    const live = keys.filter((k) => this.replica.mvcc.get(k)) as KeyString[];
    if (live.length === 0 || this.closed) return Promise.resolve(this.durableRev);
    for (const k of live) this.replica.buckets.delete(k);
    const changes = this.replica.buckets.commit();
    this.replica.buckets.settle();
    const seq = ++this.authoredSeq;
    const done = new Promise<number>((resolve) => this.authored.set(seq, resolve));
    this.submit([{ actor: this.replica.actor, seq, changes, writes: live.map((key) => ({ key, value: null, lease: 0 })) }]);
    return done;
  }

  /** Keys replayed at recovery: they are not in the snapshot yet. */
  private dirtyKeys = new Set<string>();

  /** The recovered state, for starting frontends; handed out once, then dropped. */
  takeBootstrap(): Bootstrap {
    const b = this.bootstrapData;
    assert(b, "bootstrap taken once");
    this.bootstrapData = null;
    return b;
  }

  /** The newest revision that is durable (and so visible to frontends). */
  get revision(): number {
    return this.durableRev;
  }

  get compactRevision(): number {
    return this.replica.mvcc.compactRev;
  }

  /** Takes one frontend's envelopes; they are applied on the next turn, in arrival order. */
  submit(envelopes: Envelope[]): void {
    if (this.closed) return;
    for (const e of envelopes) this.incoming.push(e);
    if (!this.applyScheduled) {
      this.applyScheduled = true;
      setImmediate(() => this.applyIncoming());
    }
  }

  /**
   * Bucket documents for a frontend to borrow, each asked with the version
   * the frontend keeps (-1: none): the changes since it, or the saved bytes
   * (StoredDocs.lend). Everything submitted so far is applied first, so the
   * loans hold the asking frontend's own earlier changes.
   */
  lend(requests: readonly (readonly [bucket: number, known: number])[]): Loan[] {
    while (this.incoming.length > 0) this.applyIncoming();
    return requests.map(([b, known]) => this.replica.buckets.lend(b, known));
  }

  private applyIncoming(): void {
    this.applyScheduled = false;
    const batch = this.incoming.length <= APPLY_BATCH_MAX ? this.incoming.splice(0) : this.incoming.splice(0, APPLY_BATCH_MAX);
    if (this.incoming.length > 0) {
      this.applyScheduled = true;
      setImmediate(() => this.applyIncoming());
    }
    if (batch.length === 0) return;
    applyBatch.observe(batch.length);
    const entries: AppliedEntry[] = [];
    let rev = this.replica.rev;
    for (const e of batch) entries.push({ rev: ++rev, actor: e.actor, seq: e.seq, changes: e.changes, writes: e.writes });
    const { events, merge } = this.reconciler.apply(entries);
    if (merge) {
      const mergeEntry: AppliedEntry = { rev: this.replica.rev + 1, changes: [], writes: merge };
      events.push(...this.replica.mvcc.apply(mergeEntry.rev, merge));
      entries.push(mergeEntry);
    }
    const orphans = this.leases.track(events);
    if (orphans.length > 0) void this.deleteAuthored(orphans); // written with a lease revoked meanwhile
    const records = entries.map((e) => {
      const record: ChangeRecord = { rev: e.rev, changes: e.changes, writes: e.writes };
      const key = e.actor ? changeKey(e.actor, e.seq!) : mergeKey(e.rev);
      for (const c of e.changes) this.dirtyBuckets.add(c.bucket);
      this.uncovered.push({ key, rev: e.rev });
      return { key, record };
    });
    const lastRev = entries[entries.length - 1].rev;
    this.log.append(records).then(
      () => this.onDurable(entries, lastRev, events),
      (e) => this.opts.log?.(`persistence failed; writes are refused from now on: ${(e as Error).message}`),
    );
  }

  private onDurable(entries: AppliedEntry[], lastRev: number, events: MvccEvent[]): void {
    this.durableRev = lastRev;
    this.opts.broadcast?.({ type: "applied", entries });
    for (const e of entries) {
      if (e.actor !== this.replica.actor) continue;
      this.authored.get(e.seq!)?.(e.rev);
      this.authored.delete(e.seq!);
    }
    this.opts.onEvents?.(events, lastRev);
    if (this.uncovered.length >= this.opts.snapshotCount && !this.snapshotRunning) {
      void this.snapshot().catch((e) => this.opts.log?.(`snapshot failed: ${(e as Error).message}`));
    }
  }

  /**
   * etcd Compact: drops history below `rev` everywhere; durable when it
   * resolves. Reads below `rev` fail at once; the histories are trimmed a
   * slice per turn after (MvccStore.trimSoon). `physical` (etcd's flag:
   * return once the compacted entries are gone): also waits for this
   * store's trimming to finish.
   */
  async compact(rev: number, physical = false): Promise<void> {
    if (rev > this.durableRev) throw new MergekvError("FutureRevision");
    this.replica.mvcc.setCompactRev(rev);
    this.replica.mvcc.trimSoon();
    await this.log.setCompactRev(rev);
    this.opts.broadcast?.({ type: "compact", rev });
    if (physical) await this.replica.mvcc.trimmed();
  }

  /**
   * Saves the state as a snapshot and deletes the change records it covers.
   * Writes keep flowing: the work is sliced across event-loop turns, and state
   * saved after the snapshot revision only makes replay skip more (it is idempotent).
   */
  snapshot(onProgress?: (done: number, total: number) => void): Promise<SnapshotReport> {
    if (!this.snapshotRunning) {
      this.snapshotRunning = this.takeSnapshot(onProgress).finally(() => { this.snapshotRunning = null; });
    }
    return this.snapshotRunning;
  }

  private async takeSnapshot(onProgress?: (done: number, total: number) => void): Promise<SnapshotReport> {
    const started = Date.now();
    const snapshotRev = this.replica.rev;
    const covered = this.uncovered;
    this.uncovered = [];
    const buckets = [...this.dirtyBuckets];
    this.dirtyBuckets = new Set();
    const keys = new Set<string>(this.replica.mvcc.takeDirty());
    for (const k of this.dirtyKeys) keys.add(k);
    this.dirtyKeys.clear();
    const savedBuckets: [number, Uint8Array][] = [];
    for (let i = 0; i < buckets.length; i += SNAPSHOT_BUCKETS_PER_TURN) {
      for (const b of buckets.slice(i, i + SNAPSHOT_BUCKETS_PER_TURN)) {
        const bytes = this.replica.buckets.save(b);
        if (bytes) savedBuckets.push([b, bytes]);
      }
      onProgress?.(i + SNAPSHOT_BUCKETS_PER_TURN, buckets.length + keys.size);
      await nextTurn();
    }
    const histories: [KeyString, Buffer | undefined][] = [];
    const keyList = [...keys];
    for (let i = 0; i < keyList.length; i += SNAPSHOT_KEYS_PER_TURN) {
      for (const k of keyList.slice(i, i + SNAPSHOT_KEYS_PER_TURN)) histories.push([k as KeyString, this.replica.mvcc.encodeHistory(k)]);
      onProgress?.(buckets.length + i + SNAPSHOT_KEYS_PER_TURN, buckets.length + keys.size);
      await nextTurn();
    }
    try {
      const prepared = buckets.length + keys.size;
      await this.log.writeSnapshot({ snapshotRev, buckets: savedBuckets, histories, covered: covered.map((c) => c.key) }, (done, total) => onProgress?.(prepared + done, prepared + total));
    } catch (e) {
      this.uncovered = covered.concat(this.uncovered); // nothing was deleted: the records still stand
      for (const b of buckets) this.dirtyBuckets.add(b);
      for (const k of keys) this.dirtyKeys.add(k);
      throw e;
    }
    snapshots.inc();
    const report = { snapshotRev, records: covered.length, buckets: savedBuckets.length, keys: histories.length, ms: Date.now() - started };
    this.opts.log?.(`snapshot at revision ${snapshotRev}: ${report.records} records covered, ${report.buckets} buckets and ${report.keys} key histories saved in ${report.ms} ms`);
    return report;
  }

  /** Number of change records not yet covered by a snapshot. */
  get uncoveredRecords(): number {
    return this.uncovered.length;
  }

  /** Stops taking writes and waits for what is in flight to be durable. */
  async close(): Promise<void> {
    this.leaseKeeper.stop();
    this.closed = true;
    while (this.incoming.length > 0 || this.applyScheduled) await nextTurn();
    if (this.snapshotRunning) await this.snapshotRunning.catch(() => undefined);
    await this.log.drain();
  }
}

/** Resolves in the next event-loop turn, after the I/O and messages waiting now. */
export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export { bucketOf };
