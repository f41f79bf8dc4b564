/**
 * One full replica of the keyspace: the Automerge bucket documents (the CRDT
 * truth) and the MVCC store derived from the same revision sequence. The
 * backend and every frontend each hold one and feed it identical entries.
 */
import { BucketSet } from "./buckets";
import { MvccStore, MvccEvent } from "./mvcc";
import { ActorId, KeyString } from "../persist/encoding";
import { BucketChange, Write, PackedHistories, unpackHistories } from "../persist/records";

/** One revision as the backend assigned it. Merge entries carry writes only. */
export interface AppliedEntry {
  rev: number;
  actor?: ActorId;
  seq?: number;
  changes: BucketChange[];
  writes: Write[];
}

/** What a replica needs to start: the snapshot and the records after it. */
export interface Bootstrap {
  /** The recovered revision: may exceed every history and entry (compacted or no-op writes). */
  rev: number;
  compactRev: number;
  buckets: [number, Uint8Array][];
  histories: PackedHistories;
  entries: AppliedEntry[];
  /** Ids of the leases that exist (frontends refuse Puts naming others). */
  leases: number[];
}

export interface ReplicaOptions {
  /** Record which keys change (for incremental snapshots). */
  trackDirty?: boolean;
  /** The buckets whose documents this replica keeps (default: all, as the backend). */
  owns?: (bucket: number) => boolean;
  /** Keep documents loaded (frontends) or stored as bytes (the backend); see BucketSet. */
  resident?: boolean;
  /** Index history by revision: the backend's replica, which watches catch up from. */
  byRevision?: boolean;
}

export class Replica {
  readonly buckets: BucketSet;
  readonly mvcc: MvccStore;

  constructor(readonly actor: ActorId, opts: ReplicaOptions = {}) {
    this.buckets = new BucketSet(actor, opts.owns, opts.resident ?? true);
    this.mvcc = new MvccStore({ trackDirty: opts.trackDirty, byRevision: opts.byRevision });
  }

  get rev(): number {
    return this.mvcc.rev;
  }

  /** Loads a snapshot and replays the entries after it (idempotent over the snapshot). */
  bootstrap(b: Bootstrap): void {
    for (const [bucket, bytes] of b.buckets) this.buckets.load(bucket, bytes);
    this.mvcc.indexFrom(b.compactRev);
    for (const [key, bytes] of unpackHistories(b.histories)) this.mvcc.loadHistory(key, bytes, `history of ${JSON.stringify(key)}`);
    this.buckets.applyRemote(b.entries.flatMap((e) => e.changes));
    for (const e of b.entries) this.mvcc.apply(e.rev, e.writes, true);
    if (b.rev > this.mvcc.rev) this.mvcc.rev = b.rev; // revisions never go down
    if (b.compactRev > this.mvcc.compactRev) this.mvcc.compact(b.compactRev);
  }

  /** Applies entries in revision order; changes authored by this replica's own actor are skipped. */
  apply(entries: readonly AppliedEntry[]): MvccEvent[] {
    const foreign: BucketChange[] = [];
    for (const e of entries) if (e.actor !== this.actor) for (const c of e.changes) foreign.push(c);
    if (foreign.length > 0) this.buckets.applyRemote(foreign);
    const events: MvccEvent[] = [];
    for (const e of entries) for (const ev of this.mvcc.apply(e.rev, e.writes)) events.push(ev);
    return events;
  }
}
